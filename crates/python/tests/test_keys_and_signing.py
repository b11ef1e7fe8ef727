"""Keys, signing and bad input: the Rust crates' rules and errors, as Python exceptions."""

from __future__ import annotations

import os
import time

import pytest

import laissez

AUD = "billing-queue"


def test_secret_key_round_trips_pem_and_files_with_the_cli_rules(tmp_path):
    key = laissez.SecretKey.generate()
    assert len(key.kid) == 16 and int(key.kid, 16) >= 0
    again = laissez.SecretKey.from_pem(key.to_pem())
    assert again.kid == key.kid and again.public_key() == key.public_key()
    assert "PRIVATE" not in repr(key) and key.kid in repr(key)

    pub = key.save(tmp_path / "k.key")
    assert oct(os.stat(tmp_path / "k.key").st_mode & 0o777) == "0o600"
    assert laissez.SecretKey.load(tmp_path / "k.key").kid == key.kid
    assert laissez.PublicKey.from_pem(open(pub).read()) == key.public_key()
    with pytest.raises(laissez.InvalidKey) as exists:
        key.save(tmp_path / "k.key")
    assert exists.value.reason == "exists"

    os.chmod(tmp_path / "k.key", 0o644)
    with pytest.raises(laissez.InvalidKey) as loose:
        laissez.SecretKey.load(tmp_path / "k.key")
    assert loose.value.reason == "loose_permissions"
    with pytest.raises(laissez.InvalidKey) as missing:
        laissez.SecretKey.load(tmp_path / "absent.key")
    assert missing.value.reason == "io"


def test_trust_files_hold_several_keys(tmp_path):
    keys = [laissez.SecretKey.generate() for _ in range(3)]
    text = "".join(k.public_key().to_pem() for k in keys)
    (tmp_path / "trust.pub").write_text(text)
    loaded = laissez.PublicKey.load_trust(tmp_path / "trust.pub")
    assert [k.kid for k in loaded] == [k.kid for k in keys]
    assert laissez.PublicKey.parse_trust(text) == loaded
    with pytest.raises(laissez.InvalidKey) as several:
        laissez.PublicKey.from_pem(text)
    assert several.value.reason == "several_public_keys"
    # A Verifier takes a trust file path, keys, or a mix.
    envelope = laissez.sign(keys[2], agent="a", aud=AUD, tools="crm.*")
    for trusted in (tmp_path / "trust.pub", str(tmp_path / "trust.pub"), loaded, loaded[2]):
        assert laissez.Verifier(trusted, AUD).verify(envelope).allowed


def test_public_keys_are_checked_when_loaded():
    with pytest.raises(laissez.InvalidKey) as small_order:
        laissez.PublicKey.from_bytes(bytes(32))  # the identity point: small order
    assert small_order.value.reason
    with pytest.raises(laissez.InvalidKey) as short:
        laissez.PublicKey.from_bytes(b"\x01" * 31)
    assert short.value.reason == "bad_length"
    with pytest.raises(laissez.InvalidKey):
        laissez.PublicKey.from_pem("not a key")


def test_sign_builds_what_was_asked():
    issuer, agent = laissez.SecretKey.generate(), laissez.SecretKey.generate()
    envelope = laissez.sign(
        issuer,
        agent="spiffe://acme.example/agent/support-bot",
        aud=[AUD, "other"],
        tools=["crm.ticket.*", "crm.ticket.close=write", ("files.delete", ["destructive"])],
        classes="read",
        max_uses=3,
        ttl="15m",
        iss="orchestrator",
        obo="user:alice",
        session="task-42",
        holder=agent.public_key(),
    )
    claims = envelope.claims
    assert claims["sub"] == "spiffe://acme.example/agent/support-bot"
    assert claims["aud"] == [AUD, "other"]
    assert claims["exp"] - claims["nbf"] == 900
    assert claims["cnf"] == agent.kid
    assert claims["grant"] == {
        "v": 1,
        "tools": ["crm.ticket.*", ["crm.ticket.close", ["write"]], ["files.delete", ["destructive"]]],
        "classes": ["read"],
        "max_uses": 3,
        "obo": "user:alice",
        "sid": "task-42",
    }
    assert envelope.kid == issuer.kid
    assert bytes(envelope)[0] == 0xD2 and len(envelope) == len(bytes(envelope))
    assert laissez.Envelope(envelope.text) == envelope == laissez.Envelope(bytes(envelope))


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        (dict(ttl="25h"), "ttl_too_long"),
        (dict(ttl=0), "ttl_zero"),
        (dict(max_uses=0), "max_uses_zero"),
        (dict(tools=[]), "no_tools"),
        (dict(tools=["CRM.Read"]), "tool_pattern"),
        (dict(aud=[]), "no_audience"),
        (dict(agent=""), "empty_agent"),
        (dict(classes="read+admin"), "unknown_class"),
        (dict(ttl="soon"), "bad_duration"),
    ],
)
def test_sign_refuses_what_the_rust_builder_refuses(kwargs, reason):
    args = dict(agent="a", aud=AUD, tools=["crm.*"])
    args.update(kwargs)
    with pytest.raises(laissez.SignError) as refused:
        laissez.sign(laissez.SecretKey.generate(), **args)
    assert refused.value.reason == reason, str(refused.value)


def test_wrong_types_and_bad_bytes_raise_clear_exceptions():
    key = laissez.SecretKey.generate()
    verifier = laissez.Verifier(key.public_key(), AUD)
    with pytest.raises(TypeError):
        laissez.sign("not a key", agent="a", aud=AUD, tools=["crm.*"])
    with pytest.raises(TypeError):
        laissez.sign(key, agent="a", aud=AUD, tools=[42])
    with pytest.raises(TypeError):
        verifier.verify(12345)
    with pytest.raises(TypeError):
        laissez.Verifier("x", AUD) if False else laissez.Verifier(42, AUD)
    with pytest.raises(laissez.LaissezError) as junk:
        laissez.Envelope(b"\xd2 not an envelope")
    assert junk.value.reason == "malformed"
    # Not an envelope, or far too large: a decision, never a crash.
    for data in (b"", b"\x00" * 10, os.urandom(1 << 20), "!!!not base64!!!", "A" * (1 << 22)):
        decision = verifier.verify(data)
        assert (decision.allowed, decision.reason) == (False, "malformed")
    envelope = laissez.sign(key, agent="a", aud=AUD, tools=["crm.*"])
    with pytest.raises(TypeError):
        verifier.verify(envelope, tool="crm.read", cls="read", message_id="m", body="text")
    with pytest.raises(ValueError):
        verifier.verify(envelope, tool="crm.*", cls="read")
    with pytest.raises(laissez.LaissezError) as cls:
        verifier.verify(envelope, tool="crm.read", cls="admin")
    assert cls.value.reason == "unknown_class"
    # A huge body is hashed like any other (the GIL released meanwhile).
    huge = verifier.verify(
        envelope, tool="crm.read", cls="read", message_id="m-1", body=b"x" * (64 << 20)
    )
    assert huge.allowed


def test_decision_is_frozen_and_check_raises_denied():
    key = laissez.SecretKey.generate()
    envelope = laissez.sign(key, agent="a", aud=AUD, tools=["crm.read"])
    verifier = laissez.Verifier([key.public_key()], AUD)
    decision = verifier.verify(envelope, tool="crm.write", cls="write")
    assert (decision.allowed, decision.reason, bool(decision)) == (False, "tool_not_granted", False)
    assert decision.claims["sub"] == "a" and decision.kid == key.kid
    with pytest.raises(AttributeError):
        decision.allowed = True
    with pytest.raises(laissez.Denied) as denied:
        verifier.check(envelope, tool="crm.write", cls="write")
    assert denied.value.reason == "tool_not_granted"
    assert denied.value.decision == decision
    assert isinstance(denied.value, laissez.LaissezError)
    allowed = verifier.check(envelope, tool="crm.read", cls="read")
    assert allowed.allowed and allowed.reason is None
    later = verifier.verify(envelope, now=int(time.time()) + 3600)
    assert later.reason == "expired"
    assert laissez.Verifier(key.public_key(), "elsewhere").verify(envelope).reason == "wrong_audience"
    other = laissez.Verifier(laissez.SecretKey.generate().public_key(), AUD)
    assert other.verify(envelope).reason == "unknown_key"
    assert set(laissez.REASONS) >= {"malformed", "expired", "invocation_required", "replayed"}


def test_invocations_bind_the_holder_to_one_call():
    issuer, agent = laissez.SecretKey.generate(), laissez.SecretKey.generate()
    envelope = laissez.sign(
        issuer, agent="a", aud=AUD, tools=["crm.*"], classes="read+write", holder=agent.public_key()
    )
    call = dict(tool="crm.ticket.close", cls="write", message_id="m-1", body=b'{"t": 1}')
    inv = laissez.invoke(
        agent, envelope, aud=AUD, message_id="m-1", tool="crm.ticket.close", cls="write",
        body=b'{"t": 1}',
    )
    assert inv.kid == agent.kid and bytes(inv)[0] == 0xD2
    verifier = laissez.Verifier(issuer.public_key(), AUD)
    assert verifier.verify(envelope, invocation=inv, **call).allowed
    assert verifier.verify(envelope, invocation=inv.text, **call).allowed
    assert verifier.verify(envelope, invocation=bytes(inv), **call).allowed
    missing = verifier.verify(envelope, **call)
    assert (missing.reason, missing.detail) == ("invocation_required", "holder_bound")
    copied = verifier.verify(envelope, invocation=inv, **{**call, "message_id": "m-2"})
    assert (copied.reason, copied.detail) == ("invocation_mismatch", "message_id")
    other_body = verifier.verify(envelope, invocation=inv, **{**call, "body": b"{}"})
    assert (other_body.reason, other_body.detail) == ("invocation_mismatch", "body")
    assert verifier.verify(envelope, invocation=b"junk", **call).reason == "bad_invocation"
    # The agent's library refuses what no worker would accept, with the verifier's words.
    with pytest.raises(laissez.SignError) as not_granted:
        laissez.invoke(agent, envelope, aud=AUD, message_id="m", tool="billing.pay", cls="write")
    assert not_granted.value.reason == "tool_not_granted"
    with pytest.raises(laissez.SignError) as not_holder:
        laissez.invoke(issuer, envelope, aud=AUD, message_id="m", tool="crm.read", cls="read")
    assert not_holder.value.reason == "not_the_holder"
    bearer = laissez.sign(issuer, agent="a", aud=AUD, tools=["crm.*"])
    with pytest.raises(laissez.SignError) as bearer_refused:
        laissez.invoke(agent, bearer, aud=AUD, message_id="m", tool="crm.read", cls="read")
    assert bearer_refused.value.reason == "not_holder_bound"


def test_a_catalogue_gives_the_class():
    key = laissez.SecretKey.generate()
    envelope = laissez.sign(key, agent="a", aud=AUD, tools=["crm.ticket.*"], classes="read+write")
    verifier = laissez.Verifier(
        key.public_key(), AUD, tools={"crm.ticket.close": "write", "crm.ticket.delete": "destructive"}
    )
    assert verifier.verify(envelope, tool="crm.ticket.close").allowed
    assert verifier.verify(envelope, tool="crm.ticket.delete").reason == "class_not_granted"
    assert verifier.verify(envelope, tool="crm.ticket.read").reason == "unknown_tool"
    relabelled = verifier.verify(envelope, tool="crm.ticket.delete", cls="read")
    assert relabelled.reason == "malformed"
