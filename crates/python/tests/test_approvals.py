"""Human approval (docs/spec.md §12) from Python: approvals signed in Python count in
`laissez verify`, approvals printed by `laissez approve` count in Python, a 2-of-3 rule in
Python alone, pycose verifies an approval (aad `laissez/v1/approval`), and bad input is an
exception, never a crash."""

from __future__ import annotations

import json

import cbor2
import pytest

import laissez
from conftest import key_files
from test_pycose import pycose_verifies

AUD = "billing-queue"
TOOL = "crm.ticket.delete"
BODY = b'{"ticket": 42}'


@pytest.fixture
def people(tmp_path):
    """An issuer, an agent and three approvers, with their key files."""
    names = ["issuer", "agent", "alice", "bob", "carol"]
    return {n: key_files(tmp_path, f"{n}.key") for n in names}


def envelope_2_of_3(people) -> laissez.Envelope:
    approvers = [people[n].key.public_key() for n in ("alice", "bob", "carol")]
    return laissez.sign(
        people["issuer"].key, agent="agent-py", aud=AUD, tools=["crm.*"],
        classes="read+destructive", max_uses=3, approval=("destructive", 2, approvers),
    )


def approve(people, who: str, envelope, message_id: str = "m-1", **kw) -> laissez.Approval:
    return laissez.approve(people[who].key, envelope, aud=AUD, message_id=message_id, tool=TOOL,
                           cls="destructive", body=kw.pop("body", BODY), **kw)


def verifier(people, **kw) -> laissez.Verifier:
    approvers = [people[n].key.public_key() for n in ("alice", "bob", "carol")]
    return laissez.Verifier(people["issuer"].key.public_key(), AUD, approvers=approvers, **kw)


def test_python_approvals_count_in_the_cli(people, tmp_path, cli):
    envelope = envelope_2_of_3(people)
    alice, carol = approve(people, "alice", envelope, by="alice@acme"), approve(people, "carol", envelope)
    assert alice.kid == people["alice"].key.kid and bytes(alice)[0] == 0xD2
    (tmp_path / "approvers.pub").write_text(
        "".join(people[n].key.public_key().to_pem() for n in ("alice", "bob", "carol")))
    (tmp_path / "body").write_bytes(BODY)

    def cli_verdict(*approvals: laissez.Approval) -> dict:
        args = ["verify", "--trust", str(people["issuer"].pub), "--aud", AUD, "--tool", TOOL,
                "--class", "destructive", "--message-id", "m-1", "--body", "body", "--json",
                "--approvers", "approvers.pub"]
        for a in approvals:
            args += ["--approval", a.text]
        result = cli(*args, envelope.text)
        assert result.returncode in (0, 1), result.stderr.decode()
        return json.loads(result.stdout)

    both = cli_verdict(alice, carol)
    assert both["allowed"] is True, both
    one = cli_verdict(alice)
    assert (one["allowed"], one["reason"], one["detail"]) == (False, "approval_required", "1 of 2")
    # Python's verdicts are the CLI's, and say who counted.
    v = verifier(people)
    ours = v.verify(envelope, tool=TOOL, cls="destructive", message_id="m-1", body=BODY,
                    approvals=[alice, carol])
    assert ours.allowed and ours.approved_by == sorted([alice.kid, carol.kid])
    ours = v.verify(envelope, tool=TOOL, cls="destructive", message_id="m-1", body=BODY,
                    approvals=[alice])
    assert (ours.reason, ours.detail, ours.approved_by) == ("approval_required", "1 of 2", [])


def test_cli_approvals_count_in_python(people, tmp_path, cli):
    envelope = envelope_2_of_3(people)
    (tmp_path / "body").write_bytes(BODY)
    printed = cli("approve", "--key", str(people["bob"].path), "--envelope", envelope.text,
                  "--aud", AUD, "--message-id", "m-7", "--tool", TOOL, "--class", "destructive",
                  "--body", "body", "--by", "bob")
    assert printed.returncode == 0, printed.stderr.decode()
    bob_text = printed.stdout.decode().strip()
    assert laissez.Approval(bob_text).kid == people["bob"].key.kid
    alice = approve(people, "alice", envelope, message_id="m-7")
    decision = verifier(people).verify(envelope, tool=TOOL, cls="destructive", message_id="m-7",
                                       body=BODY, approvals=[bob_text, bytes(alice)])
    assert decision.allowed, decision
    assert set(decision.approved_by) == {people["bob"].key.kid, people["alice"].key.kid}
    # The CLI's approval is for m-7 only.
    other = verifier(people).verify(envelope, tool=TOOL, cls="destructive", message_id="m-8",
                                    body=BODY, approvals=[bob_text, alice])
    assert other.reason == "approval_required"


def test_two_of_three_in_python_alone(people):
    envelope = envelope_2_of_3(people)
    v = verifier(people)

    def decide(*approvals, body=BODY, cls="destructive", tool=TOOL):
        return v.verify(envelope, tool=tool, cls=cls, message_id="m-1", body=body,
                        approvals=list(approvals))

    alice, bob, carol = (approve(people, n, envelope) for n in ("alice", "bob", "carol"))
    assert decide(alice, bob).approved_by == sorted([alice.kid, bob.kid])
    assert decide(carol, bob, alice).allowed  # more than needed is fine
    assert decide().detail == "0 of 2"
    assert decide(alice, alice).detail == "1 of 2"  # each approver counts once
    other_body = approve(people, "bob", envelope, body=b"another ticket")
    assert decide(alice, other_body).detail == "1 of 2"  # signed over another call
    expired = approve(people, "bob", envelope, ttl=60, now=1_000_000)
    assert decide(alice, expired).detail == "1 of 2"
    not_base64 = "not an approval!"
    assert decide(alice, not_base64).detail == "1 of 2"  # text that is no approval never counts
    # Read calls need none; the agent's key is no approver.
    assert v.verify(envelope, tool="crm.read", cls="read", message_id="m-2").allowed
    # A policy that requires approval for a class no rule covers: none can count.
    strict = verifier(people, require_approval="read")
    read = strict.verify(envelope, tool="crm.read", cls="read", message_id="m-2")
    assert read.reason == "approval_required" and read.detail == "require_approval"
    with pytest.raises(laissez.Denied) as denied:
        v.check(envelope, tool=TOOL, cls="destructive", message_id="m-1", body=BODY,
                approvals=[alice])
    assert denied.value.reason == "approval_required" and denied.value.detail == "1 of 2"


def test_the_signer_refuses_approvals_no_worker_would_count(people):
    envelope = envelope_2_of_3(people)
    with pytest.raises(laissez.SignError) as e:
        approve(people, "agent", envelope)
    assert e.value.reason == "not_an_approver"
    with pytest.raises(laissez.SignError) as e:
        laissez.approve(people["alice"].key, envelope, aud=AUD, message_id="m", tool="crm.read",
                        cls="read")
    assert e.value.reason == "not_required"
    with pytest.raises(laissez.SignError) as e:
        approve(people, "alice", envelope, ttl=0)
    assert e.value.reason == "lifetime"
    with pytest.raises(laissez.SignError) as e:
        approve(people, "alice", b"\xd2 not an envelope")
    assert e.value.reason == "malformed"
    # An issuer key is never an approver.
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Verifier(people["issuer"].key.public_key(), AUD,
                         approvers=[people["issuer"].key.public_key()])
    assert e.value.reason == "approver_is_issuer"


def test_bad_approval_input_is_an_exception(people):
    envelope = envelope_2_of_3(people)
    keys = [people[n].key.public_key() for n in ("alice", "bob")]
    alice = approve(people, "alice", envelope)
    v = verifier(people)
    call = dict(tool=TOOL, cls="destructive", message_id="m-1", body=BODY)
    # More than 16 approvals is a malformed call: the gate's decision, as on every front-end.
    assert v.verify(envelope, approvals=[alice] * 17, **call).reason == "malformed"
    assert v.verify(envelope, approvals=[alice] * 16, **call).detail == "1 of 2"
    with pytest.raises(TypeError):
        v.verify(envelope, approvals=alice, **call)  # one approval, not a list
    with pytest.raises(TypeError):
        v.verify(envelope, approvals=[42], **call)
    with pytest.raises(TypeError):
        v.verify(envelope, tool=TOOL, cls="destructive", approvals=[alice])  # no call
    with pytest.raises(laissez.SignError) as e:
        laissez.sign(people["issuer"].key, agent="a", aud=AUD, tools="crm.*",
                     approval=("destructive", 3, keys))
    assert e.value.reason == "threshold"
    with pytest.raises(laissez.SignError) as e:
        laissez.sign(people["issuer"].key, agent="a", aud=AUD, tools="crm.*",
                     approval=("destructive", 1, [keys[0], keys[0]]))
    assert e.value.reason == "duplicate_approver"
    with pytest.raises(TypeError):
        laissez.sign(people["issuer"].key, agent="a", aud=AUD, tools="crm.*",
                     approval=("destructive", 1))
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Approval(b"\xd2\x84")
    assert e.value.reason == "malformed"


def test_pycose_verifies_a_python_approval(people):
    envelope = envelope_2_of_3(people)
    alice = approve(people, "alice", envelope, by="alice", ttl="10m", now=1_900_000_000)
    msg = pycose_verifies(bytes(alice), people["alice"].key.public_key(), b"laissez/v1/approval")
    apv = cbor2.loads(msg.payload)
    import hashlib

    assert apv[1] == hashlib.sha256(bytes(envelope)).digest()
    assert (apv[2], apv[3], apv[4]) == (AUD, "m-1", TOOL)
    assert apv[6] == hashlib.sha256(BODY).digest()
    assert (apv[7], apv[8], apv[9]) == (1_900_000_000, 1_900_000_600, "alice")
    # Any other aad fails.
    with pytest.raises(AssertionError):
        pycose_verifies(bytes(alice), people["alice"].key.public_key(), b"laissez/v1/invocation")
