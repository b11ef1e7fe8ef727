"""Revocation (docs/spec.md §14) from Python: records signed in Python are applied by
`laissez verify --revocations`, a CLI record by Python, a session revoked in Python ends its
envelopes, pycose verifies a record (aad `laissez/v1/revocation`), and bad input is an
exception."""

from __future__ import annotations

import json
import time

import cbor2
import pytest

import laissez
from test_pycose import pycose_verifies

AUD = "billing-queue"


def grant(issuer: laissez.SecretKey, **kw) -> laissez.Envelope:
    return laissez.sign(issuer, agent=kw.pop("agent", "agent-py"), aud=AUD, tools=["crm.*"], **kw)


def test_python_records_are_applied_by_the_cli(issuer, tmp_path, cli):
    envelope, other = grant(issuer.key), grant(issuer.key)
    record = laissez.revoke(issuer.key, cti=envelope.claims["cti"], keep="2h")
    assert record.entries == [("cti", envelope.claims["cti"])]
    assert record.until - record.iat == 7200 and record.kid == issuer.key.kid
    (tmp_path / "records").write_text(record.text + "\n")

    def cli_reason(env: laissez.Envelope, *extra: str):
        result = cli("verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", "crm.read",
                     "--class", "read", "--json", *extra, env.text)
        assert result.returncode in (0, 1), result.stderr.decode()
        return json.loads(result.stdout)["reason"]

    assert cli_reason(envelope) is None
    assert cli_reason(envelope, "--revocations", "records") == "revoked"
    assert cli_reason(other, "--revocations", "records") is None
    # Python, given the same record, agrees.
    v = laissez.Verifier(issuer.key.public_key(), AUD, revocations=[record])
    assert v.verify(envelope, tool="crm.read", cls="read").reason == "revoked"
    assert v.verify(other, tool="crm.read", cls="read").allowed


def test_a_cli_record_is_applied_by_python(issuer, cli):
    envelope = grant(issuer.key, agent="compromised-agent")
    printed = cli("revoke", "--key", str(issuer.path), "--agent", "compromised-agent")
    assert printed.returncode == 0, printed.stderr.decode()
    record = laissez.Record(printed.stdout.decode())
    assert record.entries == [("sub", "compromised-agent")]
    held = laissez.RevocationSet(issuer.key.public_key())
    assert held.add(record) == "added" and held.add(record.text) == "already_held"
    v = laissez.Verifier(issuer.key.public_key(), AUD, revocations=held)
    assert v.verify(envelope, tool="crm.read", cls="read").reason == "revoked"


def test_a_session_revoked_in_python_ends_its_envelopes(issuer):
    held = laissez.RevocationSet(issuer.key.public_key())
    v = laissez.Verifier(issuer.key.public_key(), AUD, revocations=held)
    now = int(time.time())
    task = grant(issuer.key, session="task-42", nbf=now - 10)
    other_task = grant(issuer.key, session="task-43", nbf=now - 10)
    assert v.verify(task, tool="crm.read", cls="read").allowed
    # Records added to the shared set apply to the verifier's next decisions.
    assert held.add(laissez.revoke(issuer.key, session="task-42")) == "added"
    assert len(held) == 1
    assert v.verify(task, tool="crm.read", cls="read").reason == "revoked"
    assert v.verify(other_task, tool="crm.read", cls="read").allowed
    # A session name is revoked for envelopes issued up to the record: a later one runs.
    early = laissez.revoke(issuer.key, session="task-44", now=now - 100)
    held.add(early)
    assert v.verify(grant(issuer.key, session="task-44"), tool="crm.read", cls="read").allowed
    # A record whose keep has passed is not held; prune drops what has passed.
    old = laissez.revoke(issuer.key, session="task-42", keep=60, now=1_000_000)
    assert held.add(old) == "expired"
    assert held.prune(now=now + 8 * 24 * 3600) == 2 and len(held) == 0
    assert v.verify(task, tool="crm.read", cls="read").allowed


def test_only_trusted_issuers_revoke(issuer, agent):
    envelope = grant(issuer.key)
    forged = laissez.revoke(agent.key, cti=envelope.claims["cti"])
    held = laissez.RevocationSet(issuer.key.public_key())
    with pytest.raises(laissez.LaissezError) as e:
        held.add(forged)
    assert e.value.reason == "unknown_key" and len(held) == 0
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Verifier(issuer.key.public_key(), AUD, revocations=[forged])
    assert e.value.reason == "unknown_key"
    # A set that trusts another key is not this verifier's.
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Verifier(issuer.key.public_key(), AUD,
                         revocations=laissez.RevocationSet([issuer.key.public_key(), agent.key.public_key()]))
    assert e.value.reason == "unknown_key"
    # By kid: every envelope the key signed or is bound to.
    bound = grant(issuer.key, holder=agent.key.public_key())
    v = laissez.Verifier(issuer.key.public_key(), AUD,
                         revocations=[laissez.revoke(issuer.key, kid=agent.key.public_key())])
    decision = v.verify(bound, tool="crm.read", cls="read")
    assert decision.reason == "revoked"


def test_pycose_verifies_a_python_record(issuer):
    record = laissez.revoke(issuer.key, agent=["a1", "a2"], obo="user@acme", now=1_900_000_000,
                            keep="1h")
    msg = pycose_verifies(bytes(record), issuer.key.public_key(), b"laissez/v1/revocation")
    body = cbor2.loads(msg.payload)
    assert (body[1], body[2]) == (1_900_000_000, 1_900_003_600)
    assert len(body[3]) == 3
    assert record.entries == [("sub", "a1"), ("sub", "a2"), ("obo", "user@acme")]
    with pytest.raises(AssertionError):
        pycose_verifies(bytes(record), issuer.key.public_key(), b"laissez/v1")


def test_bad_revocation_input_is_an_exception(issuer):
    with pytest.raises(laissez.SignError) as e:
        laissez.revoke(issuer.key)
    assert e.value.reason == "no_entries"
    with pytest.raises(laissez.SignError) as e:
        laissez.revoke(issuer.key, agent="a", keep=8 * 24 * 3600)
    assert e.value.reason == "keep_out_of_range"
    with pytest.raises(laissez.SignError) as e:
        laissez.revoke(issuer.key, agent=[f"a{i}" for i in range(65)])
    assert e.value.reason == "too_many_entries"
    with pytest.raises(ValueError):
        laissez.revoke(issuer.key, cti="abc")
    with pytest.raises(ValueError):
        laissez.revoke(issuer.key, kid="not hex")
    with pytest.raises(TypeError):
        laissez.revoke(issuer.key, kid=42)
    with pytest.raises(TypeError):
        laissez.Verifier(issuer.key.public_key(), AUD, revocations=42)
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Record(b"\xd2\x84\x40")
    assert e.value.reason
    with pytest.raises(TypeError):
        laissez.RevocationSet(issuer.key.public_key()).add(3.5)
