"""Holder binding against an independent COSE implementation (pycose), both directions,
through the real `laissez` binary (docs/spec.md §1, §11):

(a) envelopes and invocations that pycose signs are decided by `laissez verify`;
(b) envelopes from `laissez sign --holder` and invocations from `laissez invoke` verify in
    pycose, with the contract's external_aad of each, and decode to what was asked for.
"""

import base64
import hashlib
import json
import os
import time

import cbor2
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

ENVELOPE_AAD = b"laissez/v1"
INVOCATION_AAD = b"laissez/v1/invocation"
AUD = "billing-queue"
TOOL = "crm.ticket.close"
AGENT = "spiffe://acme.example/agent/support-bot"
BODY = b'{"ticket": 42, "note": "done"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def deterministic(value) -> bytes:
    # Every key of these maps encodes to one byte except the grant's -65537 (five bytes,
    # sorting last either way), so cbor2's length-first canonical order is also the
    # bytewise order of RFC 8949 §4.2.1 that laissez requires.
    return cbor2.dumps(value, canonical=True)


def sign1(payload: bytes, key, aad: bytes) -> bytes:
    """A tagged COSE_Sign1 made by pycose: protected {1: -8, 4: kid}, unprotected {}."""
    msg = Sign1Message(
        phdr={Algorithm: EdDSA, KID: key.kid},
        uhdr={},
        payload=payload,
        external_aad=aad,
    )
    msg.key = OKPKey(crv=Ed25519, d=key.raw_private, x=key.raw_public)
    return msg.encode(tag=True)


def pycose_verifies(data: bytes, public: bytes, aad: bytes) -> Sign1Message | None:
    """The decoded message when its signature verifies under `public` with `aad`."""
    msg = Sign1Message.decode(data)
    msg.key = OKPKey(crv=Ed25519, x=public)
    msg.external_aad = aad
    return msg if msg.verify_signature() else None


def holder_bound_envelope(issuer, holder, now: int) -> bytes:
    claims = {
        1: "python-orchestrator",
        2: AGENT,
        3: AUD,
        4: now + 300,
        5: now - 10,
        6: now - 10,
        7: os.urandom(16),
        # cnf: the holder's COSE_Key, kty OKP (1), crv Ed25519 (6), x.
        8: {1: {1: 1, -1: 6, -2: holder.raw_public}},
        -65537: {0: 1, 1: ["crm.ticket.*"], 2: 1 | 2, 3: 2},
    }
    return sign1(deterministic(claims), issuer, ENVELOPE_AAD)


def invocation(holder, envelope: bytes, msg_id: str, body: bytes, iat: int, aad=INVOCATION_AAD):
    call = {
        1: hashlib.sha256(envelope).digest(),
        2: AUD,
        3: msg_id,
        4: TOOL,
        5: 2,  # write
        6: hashlib.sha256(body).digest(),
        7: iat,
    }
    return sign1(deterministic(call), holder, aad)


def verify_args(issuer, envelope: bytes, inv: bytes, msg_id="msg-1", body="body.json"):
    return [
        "verify", "--trust", str(issuer.pub), "--aud", AUD, "--message-id", msg_id,
        "--tool", TOOL, "--class", "write", "--body", body, "--invocation", b64url(inv),
        "--json", b64url(envelope),
    ]


def decision(result):
    return json.loads(result.stdout), result.stderr.decode()


def test_pycose_envelope_and_invocation_are_allowed_by_laissez(tmp_path, laissez, issuer, holder):
    now = int(time.time())
    (tmp_path / "body.json").write_bytes(BODY)
    env = holder_bound_envelope(issuer, holder, now)
    inv = invocation(holder, env, "msg-1", BODY, now)

    result = laissez(*verify_args(issuer, env, inv))
    out, err = decision(result)
    assert result.returncode == 0, err
    assert out["allowed"] is True and out["reason"] is None
    assert out["kid"] == issuer.kid.hex()
    assert out["claims"]["cnf"] == holder.kid.hex()
    assert out["claims"]["sub"] == AGENT

    # laissez reads pycose's invocation back field by field.
    result = laissez("inspect", "--json", b64url(inv))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["kid"] == holder.kid.hex()
    assert shown["invocation"] == {
        "env": hashlib.sha256(env).hexdigest(), "aud": AUD, "msg": "msg-1", "tool": TOOL,
        "class": "write", "body": hashlib.sha256(BODY).hexdigest(), "iat": now,
    }


def test_laissez_refuses_pycose_invocations_that_do_not_fit(tmp_path, laissez, issuer, holder):
    now = int(time.time())
    (tmp_path / "body.json").write_bytes(BODY)
    (tmp_path / "changed.json").write_bytes(BODY.replace(b"42", b"43"))
    env = holder_bound_envelope(issuer, holder, now)
    inv = invocation(holder, env, "msg-1", BODY, now)

    # The body changed after the holder signed: one byte.
    result = laissez(*verify_args(issuer, env, inv, body="changed.json"))
    out, err = decision(result)
    assert result.returncode == 1
    assert err.startswith("denied: invocation_mismatch\n"), err
    assert (out["reason"], out["detail"]) == ("invocation_mismatch", "body")

    # Another message id: the copy of a published message is no new call.
    out, _ = decision(laissez(*verify_args(issuer, env, inv, msg_id="msg-2")))
    assert (out["reason"], out["detail"]) == ("invocation_mismatch", "message_id")

    # Signed with the envelope's aad instead of the invocation's: the signature fails.
    wrong_aad = invocation(holder, env, "msg-1", BODY, now, aad=ENVELOPE_AAD)
    out, _ = decision(laissez(*verify_args(issuer, env, wrong_aad)))
    assert (out["reason"], out["detail"]) == ("bad_invocation", "bad_signature")

    # Signed by the issuer, not the holder.
    by_issuer = invocation(issuer, env, "msg-1", BODY, now)
    out, _ = decision(laissez(*verify_args(issuer, env, by_issuer)))
    assert (out["reason"], out["detail"]) == ("bad_invocation", "wrong_key")


def test_laissez_envelopes_and_invocations_verify_in_pycose(tmp_path, laissez, issuer, holder):
    (tmp_path / "body.json").write_bytes(BODY)
    result = laissez(
        "sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD, "--tool",
        "crm.ticket.*", "--classes", "read+write", "--holder", str(holder.pub),
    )
    assert result.returncode == 0, result.stderr
    env_text = result.stdout.decode().strip()
    env = unb64url(env_text)

    msg = pycose_verifies(env, issuer.raw_public, ENVELOPE_AAD)
    assert msg is not None, "pycose does not verify laissez's envelope"
    assert msg.phdr[KID] == issuer.kid
    claims = cbor2.loads(msg.payload)
    assert claims[8] == {1: {1: 1, -1: 6, -2: holder.raw_public}}
    assert claims[2] == AGENT and claims[3] == AUD
    assert deterministic(claims) == msg.payload, "the claims are not deterministic CBOR"
    # The aad is part of what is signed: any other (an invocation's, none) fails.
    assert pycose_verifies(env, issuer.raw_public, INVOCATION_AAD) is None
    assert pycose_verifies(env, issuer.raw_public, b"") is None

    iat = claims[5] + 1
    result = laissez(
        "invoke", "--key", str(holder.pem), "--envelope", env_text, "--aud", AUD,
        "--message-id", "msg-7", "--tool", TOOL, "--class", "write", "--body", "body.json",
        "--now", str(iat),
    )
    assert result.returncode == 0, result.stderr
    inv = unb64url(result.stdout.decode())

    msg = pycose_verifies(inv, holder.raw_public, INVOCATION_AAD)
    assert msg is not None, "pycose does not verify laissez's invocation"
    assert msg.phdr[KID] == holder.kid
    assert msg.uhdr == {}
    call = cbor2.loads(msg.payload)
    assert call == {
        1: hashlib.sha256(env).digest(),
        2: AUD,
        3: "msg-7",
        4: TOOL,
        5: 2,
        6: hashlib.sha256(BODY).digest(),
        7: iat,
    }
    assert deterministic(call) == msg.payload, "the call is not deterministic CBOR"
    assert list(call) == [1, 2, 3, 4, 5, 6, 7]
    # Domain separation: it is no envelope signature, and the issuer's key does not verify it.
    assert pycose_verifies(inv, holder.raw_public, ENVELOPE_AAD) is None
    assert pycose_verifies(inv, issuer.raw_public, INVOCATION_AAD) is None
