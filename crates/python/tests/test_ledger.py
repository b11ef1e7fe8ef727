"""The use ledger from Python: the Rust ledger's answers, on redb, Redis (one server and a
Cluster) and in memory."""

from __future__ import annotations

import os
import time

import pytest

import laissez
from conftest import REDIS_CLUSTER_URL, REDIS_URL


def ledgers(tmp_path):
    return {
        "memory": laissez.Ledger.memory(),
        "redb": laissez.Ledger(tmp_path / "uses.redb"),
        "redis": laissez.Ledger(REDIS_URL),
        "redis-cluster": laissez.Ledger(REDIS_CLUSTER_URL),
    }


@pytest.mark.parametrize("backend", ["memory", "redb", "redis", "redis-cluster"])
def test_begin_complete_release_answer_as_in_rust(tmp_path, backend):
    ledger = ledgers(tmp_path)[backend]
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
