"""Delegation chains against an independent encoder (cbor2 + pycose), both directions,
through the real `laissez` binary (docs/spec.md §13):

(a) a chain this file builds — the root signed by the issuer with cnf A, the child signed
    by A with cnf B and -65538 = SHA-256 of the root — verifies in `laissez verify` given
    as the text form (base64url joined by `.`), with B's invocation over the child; a
    tampered, spliced or widened one is refused with the reason and detail §13 gives;
(b) a chain from `laissez sign --holder` and `laissez delegate` verifies link by link in
    pycose.
"""

import hashlib
import json
import os
import time

from conftest import make_key
from test_interop import (
    AGENT,
    AUD,
    BODY,
    ENVELOPE_AAD,
    TOOL,
    b64url,
    deterministic,
    invocation,
    pycose_verifies,
    sign1,
    unb64url,
)

import cbor2

PARENT = -65538


def cnf(key) -> dict:
    # The holder's COSE_Key: kty OKP (1), crv Ed25519 (6), x.
    return {1: {1: 1, -1: 6, -2: key.raw_public}}


def root_envelope(issuer, a, now: int) -> bytes:
    claims = {
        1: "python-orchestrator",
        2: "spiffe://acme.example/agent/planner",
        3: AUD,
        4: now + 300,
        5: now - 10,
        7: os.urandom(16),
        8: cnf(a),
        -65537: {0: 1, 1: ["crm.ticket.*"], 2: 1 | 2, 3: 2},
    }
    return sign1(deterministic(claims), issuer, ENVELOPE_AAD)


def child_envelope(a, b, parent: bytes, now: int, max_uses=1, parent_digest=None) -> bytes:
    claims = {
        2: AGENT,
        3: AUD,
        4: now + 200,
        5: now - 5,
        7: os.urandom(16),
        8: cnf(b),
        # Write only, for the one tool: narrower than the parent on every field.
        -65537: {0: 1, 1: [TOOL], 2: 2, 3: max_uses},
        PARENT: parent_digest or hashlib.sha256(parent).digest(),
    }
    return sign1(deterministic(claims), a, ENVELOPE_AAD)


def verify(laissez, issuer, chain_text: str, inv: bytes):
    result = laissez(
        "verify", "--trust", str(issuer.pub), "--aud", AUD, "--message-id", "msg-1",
        "--tool", TOOL, "--class", "write", "--body", "body.json", "--invocation",
        b64url(inv), "--json", chain_text,
    )
    return result.returncode, json.loads(result.stdout), result.stderr.decode()


def test_a_python_chain_verifies_in_laissez_and_a_tampered_one_is_refused(
    tmp_path, laissez, issuer
):
    now = int(time.time())
    (tmp_path / "body.json").write_bytes(BODY)
    a, b = make_key(tmp_path, "a"), make_key(tmp_path, "b")
    root = root_envelope(issuer, a, now)
    child = child_envelope(a, b, root, now)
    inv = invocation(b, child, "msg-1", BODY, now)

    code, out, err = verify(laissez, issuer, f"{b64url(root)}.{b64url(child)}", inv)
    assert code == 0, err
    assert out["allowed"] is True and out["reason"] is None
    assert out["kid"] == issuer.kid.hex()
    assert out["claims"]["sub"] == AGENT
    assert out["claims"]["cnf"] == b.kid.hex()
    assert [c["sub"] for c in out["chain"]] == ["spiffe://acme.example/agent/planner", AGENT]
    assert out["chain"][0]["cnf"] == a.kid.hex()

    # One byte of the child's signature changed: the link does not hold.
    tampered = bytearray(child)
    tampered[-1] ^= 0x01
    code, out, _ = verify(laissez, issuer, f"{b64url(root)}.{b64url(bytes(tampered))}", inv)
    assert (code, out["reason"], out["detail"]) == (1, "bad_delegation", "bad_signature")
    # A child naming another parent (spliced): wrong_parent.
    spliced = child_envelope(a, b, root, now, parent_digest=hashlib.sha256(b"other").digest())
    code, out, _ = verify(laissez, issuer, f"{b64url(root)}.{b64url(spliced)}", inv)
    assert (code, out["reason"], out["detail"]) == (1, "bad_delegation", "wrong_parent")
    # Signed by B instead of A: wrong_signer.
    by_b = child_envelope(b, b, root, now)
    code, out, _ = verify(laissez, issuer, f"{b64url(root)}.{b64url(by_b)}", inv)
    assert (code, out["reason"], out["detail"]) == (1, "bad_delegation", "wrong_signer")
    # More uses than the parent's 2: not attenuated.
    wide = child_envelope(a, b, root, now, max_uses=3)
    wide_inv = invocation(b, wide, "msg-1", BODY, now)
    code, out, _ = verify(laissez, issuer, f"{b64url(root)}.{b64url(wide)}", wide_inv)
    assert (code, out["reason"], out["detail"]) == (1, "not_attenuated", "max_uses")
    # The child alone names A's key, which nobody trusts.
    code, out, _ = verify(laissez, issuer, b64url(child), inv)
    assert (code, out["reason"]) == (1, "unknown_key")


def test_a_laissez_chain_verifies_link_by_link_in_pycose(tmp_path, laissez, issuer):
    a, b = make_key(tmp_path, "a"), make_key(tmp_path, "b")
    signed = laissez(
        "sign", "--key", str(issuer.pem), "--agent", "planner", "--aud", AUD, "--tool",
        "crm.ticket.*=read+write", "--max-uses", "3", "--holder", str(a.pub),
    )
    assert signed.returncode == 0, signed.stderr
    delegated = laissez(
        "delegate", "--key", str(a.pem), "--parent", signed.stdout.decode().strip(),
        "--agent", AGENT, "--holder", str(b.pub), "--tool", TOOL + "=write",
    )
    assert delegated.returncode == 0, delegated.stderr
    root_text, child_text = delegated.stdout.decode().strip().split(".")
    root, child = unb64url(root_text), unb64url(child_text)

    assert pycose_verifies(root, issuer.raw_public, ENVELOPE_AAD) is not None
    msg = pycose_verifies(child, a.raw_public, ENVELOPE_AAD)
    assert msg is not None, "the child is signed by A's (the parent's holder's) key"
    assert pycose_verifies(child, issuer.raw_public, ENVELOPE_AAD) is None
    claims = cbor2.loads(msg.payload)
    assert claims[PARENT] == hashlib.sha256(root).digest()
    assert claims[2] == AGENT
    assert claims[8][1][-2] == b.raw_public
    parent_claims = cbor2.loads(cbor2.loads(root).value[2])
    assert claims[4] <= parent_claims[4] and claims[5] >= parent_claims[5]
    assert PARENT not in parent_claims
