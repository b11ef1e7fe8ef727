"""Arguments and budgets under delegation against an independent implementation (cbor2 +
pycose), through the real `laissez` binary (docs/spec.md §13, §16, §17): a chain that this
file encodes and signs (root by the issuer, two children by the root's holder), invocations
signed here, and `laissez verify --ledger` deciding. A root's budget caps what its children
spend together; a child's args are checked besides its parent's, and a child whose args are
wider than its parent's is `not_attenuated`.
"""

import hashlib
import json
import os
import time

from conftest import make_key
from test_args_interop import ANY, GRANT, WRITE, encode, range_
from test_interop import AUD, ENVELOPE_AAD, INVOCATION_AAD, b64url, sign1

PARENT = -65538
TOOL = "billing.refund"


def cnf(key) -> dict:
    # The holder's COSE_Key: kty OKP (1), crv Ed25519 (6), x.
    return {1: {1: 1, -1: 6, -2: key.raw_public}}


def signed(claims, key) -> bytes:
    return sign1(encode(claims), key, ENVELOPE_AAD)


def root(issuer, holder, now) -> bytes:
    grant = {
        0: 1,
        1: [[TOOL, WRITE, {"amount": range_(0, 1000), "*": ANY}]],
        2: WRITE,
        3: 10,
        7: [[TOOL, "amount", 1000]],
    }
    claims = {2: "spiffe://acme.example/agent/planner", 3: AUD, 4: now + 300, 5: now - 10,
              7: os.urandom(16), 8: cnf(holder), GRANT: grant}
    return signed(claims, issuer)


def child(parent_holder, holder, parent: bytes, now, args, agent) -> bytes:
    grant = {0: 1, 1: [[TOOL, WRITE, args]], 2: WRITE, 3: 5, 7: [[TOOL, "amount", 700]]}
    claims = {2: agent, 3: AUD, 4: now + 200, 5: now - 5, 7: os.urandom(16), 8: cnf(holder),
              GRANT: grant, PARENT: hashlib.sha256(parent).digest()}
    return signed(claims, parent_holder)


def invocation(holder, leaf: bytes, msg_id: str, body: bytes, now: int) -> bytes:
    call = {1: hashlib.sha256(leaf).digest(), 2: AUD, 3: msg_id, 4: TOOL, 5: WRITE,
            6: hashlib.sha256(body).digest(), 7: now}
    return sign1(encode(call), holder, INVOCATION_AAD)


def test_a_root_budget_caps_its_children_together(tmp_path, laissez, issuer):
    now = int(time.time())
    a, b, c = (make_key(tmp_path, n) for n in "abc")
    top = root(issuer, a, now)
    # Each child names only "amount", within the root's range: narrower args. Each has its
    # own budget of 700 under the root's 1000.
    kids = {
        "b": (b, top, child(a, b, top, now, {"amount": range_(0, 600)}, "agent-b")),
        "c": (c, top, child(a, c, top, now, {"amount": range_(0, 600)}, "agent-c")),
    }
    ledger = tmp_path / "ledger.redb"

    def call(who, msg_id, amount):
        holder, parent, leaf = kids[who]
        body = json.dumps({"amount": amount}).encode()
        (tmp_path / "body.json").write_bytes(body)
        inv = invocation(holder, leaf, msg_id, body, now)
        result = laissez(
            "verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", TOOL, "--class",
            "write", "--message-id", msg_id, "--body", "body.json", "--invocation", b64url(inv),
            "--ledger", str(ledger), "--json", b64url(parent) + "." + b64url(leaf),
        )
        out = json.loads(result.stdout)
        return result.returncode, out["reason"], out.get("detail")

    assert call("b", "m1", 600) == (0, None, None)
    # The child's own args are narrower than the root's: 700 passes the root's, not the child's.
    assert call("c", "m1", 700) == (1, "arguments_not_granted", "amount")
    # 600 + 500 passes the root's 1000, though each child is within its own 700.
    assert call("c", "m1", 500) == (1, "budget_exhausted", f"{TOOL}:amount")
    assert call("c", "m1", 400) == (0, None, None), "a denied call must have spent nothing"
    # The root is at 1000: one more from either child passes it (b is at 600 of its 700).
    assert call("b", "m2", 1) == (1, "budget_exhausted", f"{TOOL}:amount")
    assert call("c", "m2", 0) == (0, None, None), "an amount of 0 passes no limit"

    # Under a fresh root with room, the child's own 700 binds alone.
    top = root(issuer, a, now)
    kids["b"] = (b, top, child(a, b, top, now, {"amount": range_(0, 600)}, "agent-b"))
    assert call("b", "n1", 600) == (0, None, None)
    assert call("b", "n2", 101) == (1, "budget_exhausted", f"{TOOL}:amount"), "b's own 700"
    assert call("b", "n2", 100) == (0, None, None)


def test_a_child_wider_than_its_parent_is_not_attenuated(tmp_path, laissez, issuer):
    now = int(time.time())
    a, b = make_key(tmp_path, "a"), make_key(tmp_path, "b")
    top = root(issuer, a, now)
    body = b'{"amount": 5}'
    (tmp_path / "body.json").write_bytes(body)
    for args in ({"amount": range_(0, 2000)}, {"amount": range_(None, 10)}, {"*": ANY}):
        leaf = child(a, b, top, now, args, "agent-b")
        inv = invocation(b, leaf, "m1", body, now)
        result = laissez(
            "verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", TOOL, "--class",
            "write", "--message-id", "m1", "--body", "body.json", "--invocation", b64url(inv),
            "--json", b64url(top) + "." + b64url(leaf),
        )
        out = json.loads(result.stdout)
        assert (result.returncode, out["reason"]) == (1, "not_attenuated"), f"{args}: {out}"
