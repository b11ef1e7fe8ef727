"""The use ledger from Python: the Rust ledger's answers, on redb, Redis (one server and a
Cluster) and in memory."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

import laissez
from conftest import REDIS_CLUSTER_URL, REDIS_URL, REDISS_CLUSTER_URL, REDISS_URL


def open_ledger(request, tmp_path, backend):
    if backend.startswith("rediss"):
        tls = request.getfixturevalue("tls_files")
        url = REDISS_URL if backend == "rediss" else REDISS_CLUSTER_URL
        return laissez.Ledger(url, ca=tls.ca, cert=tls.cert, key=tls.key)
    return {
        "memory": laissez.Ledger.memory,
        "redb": lambda: laissez.Ledger(tmp_path / "uses.redb"),
        "redis": lambda: laissez.Ledger(REDIS_URL),
        "redis-cluster": lambda: laissez.Ledger(REDIS_CLUSTER_URL),
    }[backend]()


@pytest.mark.parametrize(
    "backend", ["memory", "redb", "redis", "redis-cluster", "rediss", "rediss-cluster"]
)
def test_begin_complete_release_answer_as_in_rust(request, tmp_path, backend):
    ledger = open_ledger(request, tmp_path, backend)
    cti = os.urandom(16)
    exp = int(time.time()) + 300
    ask = dict(max_uses=2, expires_at=exp, tool="crm.read", cls="read")

    first = ledger.begin(cti, "m1", **ask)
    assert (first.code, first.granted, first.use, first.taken_over) == ("granted", True, 1, False)
    held = ledger.begin(cti, "m1", **ask)
    assert (held.code, held.granted, held.use) == ("in_flight", False, None)
    ledger.release(cti, "m1", first.lease)
    again = ledger.begin(cti, "m1", **ask)
    assert (again.code, again.use, again.taken_over) == ("granted", 1, True)
    with pytest.raises(laissez.LedgerError) as stale:
        ledger.complete(cti, "m1", first.lease)
    assert stale.value.reason == "lease_not_held"
    ledger.complete(cti, "m1", again.lease)
    assert ledger.begin(cti, "m1", **ask).code == "replayed"
    other = ledger.begin(cti, "m1", **{**ask, "tool": "crm.write"})
    assert (other.code, other.other_call) == ("replayed", True)

    second = ledger.begin(cti.hex(), "m2", **ask)  # a cti in hex, as Decision.claims has it
    assert second.use == 2
    assert ledger.begin(cti, "m3", **ask).code == "uses_exhausted"
    with pytest.raises(laissez.LedgerError) as expired:
        ledger.begin(os.urandom(16), "m1", **{**ask, "expires_at": int(time.time()) - 1})
    assert expired.value.reason == "expired"
    with pytest.raises(laissez.LedgerError) as bad_id:
        ledger.begin(cti, "", **ask)
    assert bad_id.value.reason == "invalid_message_id"
    with pytest.raises(ValueError):
        ledger.begin(b"short", "m", **ask)


def test_destructive_calls_run_at_most_once(tmp_path):
    ledger = laissez.Ledger(tmp_path / "uses.redb")
    cti = os.urandom(16)
    ask = dict(max_uses=1, expires_at=int(time.time()) + 300, tool="files.delete", cls="destructive")
    assert ledger.begin(cti, "m1", lease=0.2, **ask).granted
    time.sleep(0.4)  # the worker died: its lease expired without completing
    assert ledger.begin(cti, "m1", **ask).code == "abandoned"


def test_a_verifier_with_a_ledger_spends_uses(tmp_path):
    key = laissez.SecretKey.generate()
    envelope = laissez.sign(key, agent="a", aud="q", tools=["crm.*"], max_uses=2)
    verifier = laissez.Verifier(key.public_key(), "q", ledger=laissez.Ledger(tmp_path / "u.redb"))
    call = dict(tool="crm.read", cls="read")
    assert verifier.verify(envelope, message_id="m1", **call).use == 1
    assert verifier.verify(envelope, message_id="m1", **call).reason == "replayed"
    assert verifier.verify(envelope, message_id="m2", **call).use == 2
    assert verifier.verify(envelope, message_id="m3", **call).reason == "uses_exhausted"
    assert verifier.verify(envelope, **call).use is None  # no message: nothing spent


def test_an_unreachable_redis_is_an_error_never_a_grant():
    with pytest.raises(laissez.LedgerError) as down:
        laissez.Ledger("redis://127.0.0.1:1/")
    assert down.value.reason == "ledger_unavailable"


def test_rediss_checks_the_server_against_the_given_ca_only(tls_files):
    mutual = dict(cert=tls_files.cert, key=tls_files.key)
    # A refused handshake is `ledger_config` (retrying cannot help), naming rustls's reason.
    # A server whose certificate chains to another CA is refused, never used.
    with pytest.raises(laissez.LedgerError) as other_ca:
        laissez.Ledger(REDISS_URL, ca=tls_files.other_ca, **mutual)
    assert other_ca.value.reason == "ledger_config"
    assert "UnknownIssuer" in str(other_ca.value)
    # Without the throwaway CA, the system's roots do not know the server either.
    with pytest.raises(laissez.LedgerError) as system_roots:
        laissez.Ledger(REDISS_URL, **mutual)
    assert system_roots.value.reason == "ledger_config"
    assert "UnknownIssuer" in str(system_roots.value)
    # The listener wants a client certificate (mutual TLS): without one, no ledger.
    with pytest.raises(laissez.LedgerError) as anonymous:
        laissez.Ledger(REDISS_URL, ca=tls_files.ca)
    assert anonymous.value.reason == "ledger_config"
    assert "CertificateRequired" in str(anonymous.value)
    # The same over a TLS Cluster.
    with pytest.raises(laissez.LedgerError) as cluster:
        laissez.Ledger(REDISS_CLUSTER_URL, ca=tls_files.other_ca, **mutual)
    assert cluster.value.reason == "ledger_config"


def test_tls_options_that_cannot_work_are_refused_by_name(tmp_path, tls_files):
    with pytest.raises(laissez.LedgerError) as plain:
        laissez.Ledger(REDIS_URL, ca=tls_files.ca)
    assert plain.value.reason == "ledger_config"
    assert "rediss://" in str(plain.value)
    with pytest.raises(laissez.LedgerError) as half:
        laissez.Ledger(REDISS_URL, ca=tls_files.ca, cert=tls_files.cert)
    assert half.value.reason == "ledger_config"
    assert "key" in str(half.value)
    with pytest.raises(laissez.LedgerError) as missing:
        laissez.Ledger(REDISS_URL, ca=tmp_path / "absent.pem")
    assert missing.value.reason == "ledger_config"
    assert "absent.pem" in str(missing.value)
    with pytest.raises(ValueError, match="rediss://"):
        laissez.Ledger(tmp_path / "uses.redb", ca=tls_files.ca)


@pytest.fixture
def redis_with_password(tmp_path):
    """A throwaway redis-server that wants a password, on a free port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), "--requirepass", "hunter2-secret"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait()


def test_a_url_password_is_never_shown(redis_with_password):
    port = redis_with_password
    ledger = laissez.Ledger(f"redis://:hunter2-secret@127.0.0.1:{port}/")
    assert ledger.begin(os.urandom(16), "m1", max_uses=1, expires_at=int(time.time()) + 60,
                        tool="crm.read", cls="read").granted
    assert repr(ledger) == f'Ledger("redis://:***@127.0.0.1:{port}/")'
    with pytest.raises(laissez.LedgerError) as refused:
        laissez.Ledger(f"redis://someone:wrong-secret@127.0.0.1:{port}/")
    assert refused.value.reason == "ledger_unavailable"
    assert "wrong-secret" not in str(refused.value)


def test_a_location_that_is_neither_a_path_nor_a_redis_url_is_refused():
    # One reading of a location for every front-end (laissez_ledger::LedgerLocation): another
    # URL scheme is not taken for a file's path, and the error never quotes the password.
    for location, says in [
        ("", "empty"),
        ("http://:not-this-secret@h/", '"http"'),
        ("redis+cluster://:not-this-secret@a:1/2", "names no database"),
    ]:
        with pytest.raises(laissez.LedgerError) as refused:
            laissez.Ledger(location)
        assert refused.value.reason == "ledger_config", location
        assert says in str(refused.value), str(refused.value)
        assert "not-this-secret" not in str(refused.value)
