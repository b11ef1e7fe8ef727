"""Human approval against an independent COSE implementation (pycose), both directions,
through the real `laissez` binary (docs/spec.md §12):

(a) an envelope with an approval rule and approvals that pycose signs are decided by
    `laissez verify`: two of three approvers let a destructive call through, one does not,
    and an approval signed with another aad never counts;
(b) an envelope from `laissez sign --approval` and an approval from `laissez approve` verify
    in pycose under the approval aad, and decode to the rule and the call that were asked for.
"""

import hashlib
import json
import os
import time

import cbor2
from pycose.headers import KID

from conftest import make_key
from test_interop import (
    AGENT, AUD, ENVELOPE_AAD, INVOCATION_AAD, b64url, deterministic, pycose_verifies, sign1,
    unb64url,
)

APPROVAL_AAD = b"laissez/v1/approval"
TOOL = "crm.ticket.delete"
BODY = b'{"ticket": 42}'
DESTRUCTIVE = 4


def ruled_envelope(issuer, approvers, m: int, now: int) -> bytes:
    kids = sorted(a.kid for a in approvers)
    claims = {
        2: AGENT,
        3: AUD,
        4: now + 300,
        5: now - 10,
        7: os.urandom(16),
        -65537: {
            0: 1, 1: ["crm.ticket.*"], 2: 1 | 2 | 4, 3: 1,
            6: {1: DESTRUCTIVE, 2: m, 3: kids},
        },
    }
    return sign1(deterministic(claims), issuer, ENVELOPE_AAD)


def approval(approver, envelope: bytes, now: int, aad=APPROVAL_AAD, msg_id="msg-1") -> bytes:
    apv = {
        1: hashlib.sha256(envelope).digest(),
        2: AUD,
        3: msg_id,
        4: TOOL,
        5: DESTRUCTIVE,
        6: hashlib.sha256(BODY).digest(),
        7: now - 5,
        8: now + 600,
        9: "a person",
    }
    return sign1(deterministic(apv), approver, aad)


def verify(laissez, issuer, approvers, envelope: bytes, approvals):
    args = [
        "verify", "--trust", str(issuer.pub), "--aud", AUD, "--message-id", "msg-1",
        "--tool", TOOL, "--class", "destructive", "--body", "body.json", "--json",
    ]
    for a in approvers:
        args += ["--approvers", str(a.pub)]
    for apv in approvals:
        args += ["--approval", b64url(apv)]
    result = laissez(*args, b64url(envelope))
    return result.returncode, json.loads(result.stdout)


def test_pycose_approvals_are_counted_by_laissez(tmp_path, laissez, issuer):
    now = int(time.time())
    (tmp_path / "body.json").write_bytes(BODY)
    a, b, c = (make_key(tmp_path, n) for n in "abc")
    env = ruled_envelope(issuer, [a, b, c], 2, now)

    code, out = verify(laissez, issuer, [a, b, c], env, [])
    assert (code, out["reason"], out["detail"]) == (1, "approval_required", "0 of 2")
    code, out = verify(laissez, issuer, [a, b, c], env, [approval(a, env, now)])
    assert (code, out["detail"]) == (1, "1 of 2")
    code, out = verify(
        laissez, issuer, [a, b, c], env, [approval(a, env, now), approval(c, env, now)]
    )
    assert code == 0 and out["allowed"] is True, out
    rule = out["claims"]["grant"]["approval"]
    assert rule == {"classes": ["destructive"], "m": 2, "approvers": sorted(k.kid.hex() for k in (a, b, c))}

    # Another aad (an invocation's) or another message id: it does not count.
    for bad in (approval(a, env, now, aad=INVOCATION_AAD), approval(a, env, now, msg_id="msg-2")):
        code, out = verify(laissez, issuer, [a, b, c], env, [bad, approval(c, env, now)])
        assert (code, out["detail"]) == (1, "1 of 2")


def test_laissez_rules_and_approvals_verify_in_pycose(tmp_path, laissez, issuer):
    (tmp_path / "body.json").write_bytes(BODY)
    a, b = make_key(tmp_path, "a"), make_key(tmp_path, "b")
    result = laissez(
        "sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD, "--tool",
        "crm.ticket.*", "--classes", "read+write+destructive", "--approval", "destructive",
        "--approvals", "1", "--approver", str(a.pub), "--approver", str(b.pub),
    )
    assert result.returncode == 0, result.stderr
    env_text = result.stdout.decode().strip()
    env = unb64url(env_text)
    msg = pycose_verifies(env, issuer.raw_public, ENVELOPE_AAD)
    assert msg is not None
    grant = cbor2.loads(msg.payload)[-65537]
    assert grant[6] == {1: DESTRUCTIVE, 2: 1, 3: sorted([a.kid, b.kid])}

    result = laissez(
        "approve", "--key", str(a.pem), "--envelope", env_text, "--aud", AUD,
        "--message-id", "msg-9", "--tool", TOOL, "--class", "destructive", "--body",
        "body.json", "--by", "Alice",
    )
    assert result.returncode == 0, result.stderr
    apv = unb64url(result.stdout.decode())
    msg = pycose_verifies(apv, a.raw_public, APPROVAL_AAD)
    assert msg is not None, "pycose does not verify laissez's approval"
    assert msg.phdr[KID] == a.kid and msg.uhdr == {}
    body = cbor2.loads(msg.payload)
    assert list(body) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert body[1] == hashlib.sha256(env).digest()
    assert (body[2], body[3], body[4], body[5], body[9]) == (AUD, "msg-9", TOOL, DESTRUCTIVE, "Alice")
    assert body[6] == hashlib.sha256(BODY).digest()
    # approve's default --ttl is 15 minutes.
    assert body[8] - body[7] == 15 * 60
    assert deterministic(body) == msg.payload
    # Domain separation: not an invocation, not an envelope.
    assert pycose_verifies(apv, a.raw_public, INVOCATION_AAD) is None
    assert pycose_verifies(apv, a.raw_public, ENVELOPE_AAD) is None
