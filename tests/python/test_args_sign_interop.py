"""Arguments and budgets that `laissez` signs, read by an independent implementation (cbor2 +
pycose) (docs/spec.md §16, §17); the other direction is test_args_interop.py.

(b) envelopes from `laissez sign --args/--budget/--approval-unless` and from `laissez
    delegate` verify in pycose under the contract's external_aad, decode to exactly the args,
    budgets and waivers that were asked for (§10's CBOR: constraint arrays, members and
    values sorted by encoding), are deterministic, and `laissez inspect --json` shows them in
    §10's JSON form.
"""

import hashlib
import json

import cbor2
import pytest

from conftest import make_key
from test_args_interop import (
    ANY, GRANT, READ, WRITE, _ordered, all_, by_encoding, each, encode, eq, max_len, not_one_of,
    obj, one_of, optional, prefix, range_, subpath, suffix,
)
from test_interop import AGENT, AUD, ENVELOPE_AAD, pycose_verifies, unb64url

# JSON as a user would write it: members and one_of values in no particular order.
SIGN_ARGS_JSON = {
    "sku": {"all": [{"prefix": "SKU-"}, {"max_len": 16}]},
    "qty": {"range": [1, None]},
    "priority": {"optional": {"one_of": [True, "high", 2, 1, None]}},
    "region": {"not_one_of": ["us", "cn", -1]},
    "file": {"subpath": "/uploads"},
    "name": {"suffix": ".pdf"},
    "mode": {"eq": "live"},
    "items": {"each": {"object": {"id": {"range": [None, 99]}, "*": "any"}}, "max_items": 3},
    "*": "any",
}

# The §10 CBOR those must become: members sorted by encoding, values sorted by encoding.
SIGN_ARGS_CBOR = {
    "sku": all_(prefix("SKU-"), max_len(16)),
    "qty": range_(1, None),
    "priority": optional(one_of(True, "high", 2, 1, None)),
    "region": not_one_of("us", "cn", -1),
    "file": subpath("/uploads"),
    "name": suffix(".pdf"),
    "mode": eq("live"),
    "items": each(obj({"id": range_(None, 99), "*": ANY}), 3),
    "*": ANY,
}

UNLESS_JSON = {"amount": {"range": [None, 500]}, "currency": {"one_of": ["USD", "EUR"]}}


def sorted_json(args):
    """The JSON form as laissez should show it back: one_of / not_one_of values sorted as the
    CBOR orders them (member order is no matter in a JSON object)."""
    if isinstance(args, dict):
        out = {}
        for k, v in args.items():
            if k in ("one_of", "not_one_of"):
                out[k] = by_encoding(v)
            else:
                out[k] = sorted_json(v)
        return out
    if isinstance(args, list):
        return [sorted_json(v) for v in args]
    return args


def assert_deterministic(payload: bytes):
    claims = cbor2.loads(payload)
    assert encode(claims) == payload, "the claims are not in the contract's deterministic order"
    assert cbor2.dumps(claims, canonical=True) == payload, "canonical cbor2 re-encodes differently"
    return claims


def test_laissez_signed_args_budgets_and_waivers_decode_here(tmp_path, laissez, issuer):
    approver = make_key(tmp_path, "approver")
    result = laissez(
        "sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD,
        "--tool", "shop.order.create=write", "--tool", "billing.*=write", "--tool", "crm.read",
        "--args", "shop.order.create=" + json.dumps(SIGN_ARGS_JSON),
        "--args", "crm.read=" + json.dumps({"id": {"range": [0, None]}}),
        "--budget", "billing.*:amount=100000", "--budget", "billing.refund:a:b=c=7",
        "--approval", "write", "--approvals", "1", "--approver", str(approver.pub),
        "--approval-unless", "billing.refund=" + json.dumps(UNLESS_JSON),
        "--max-uses", "5",
    )
    assert result.returncode == 0, result.stderr
    env_text = result.stdout.decode().strip()
    msg = pycose_verifies(unb64url(env_text), issuer.raw_public, ENVELOPE_AAD)
    assert msg is not None, "pycose does not verify laissez's envelope under 'laissez/v1'"
    assert pycose_verifies(unb64url(env_text), issuer.raw_public, b"laissez/v2") is None

    claims = assert_deterministic(msg.payload)
    grant = claims[GRANT]
    assert grant[1] == [
        ["shop.order.create", WRITE, _ordered(SIGN_ARGS_CBOR)],
        ["billing.*", WRITE],
        ["crm.read", READ, {"id": range_(0, None)}],
    ], grant[1]
    # cbor2 keeps the order of the wire in its dicts: the members must come sorted.
    args = grant[1][0][2]
    assert list(args) == sorted(args, key=cbor2.dumps), list(args)
    assert args["priority"][1][1] == [1, 2, "high", True, None], "one_of sorted by encoding"
    assert args["region"][1] == [-1, "cn", "us"], "not_one_of sorted by encoding"
    # The budget's member holds ':' and '=': split at the first ':' and the last '='.
    assert grant[7] == [["billing.*", "amount", 100000], ["billing.refund", "a:b=c", 7]], grant[7]
    assert grant[6] == {
        1: WRITE, 2: 1, 3: [approver.kid],
        4: [["billing.refund", {"amount": range_(None, 500), "currency": one_of("EUR", "USD")}]],
    }, grant[6]

    # inspect shows the same in the JSON form.
    result = laissez("inspect", "--json", env_text)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["claims"]["grant"]
    assert shown["tools"] == [
        ["shop.order.create", ["write"], sorted_json(SIGN_ARGS_JSON)],
        ["billing.*", ["write"]],
        ["crm.read", ["read"], {"id": {"range": [0, None]}}],
    ], shown["tools"]
    assert shown["budgets"] == [["billing.*", "amount", 100000], ["billing.refund", "a:b=c", 7]]
    assert shown["approval"]["unless"] == [["billing.refund", sorted_json(UNLESS_JSON)]]

    # And laissez decides by them: the waiver holds for a small refund.
    body = tmp_path / "b.json"
    # billing.refund's budget on "a:b=c" applies too, so the body carries that member.
    body.write_text(json.dumps({"amount": 300, "currency": "EUR", "a:b=c": 1}))
    result = laissez("verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool",
                     "billing.refund", "--class", "write", "--body", str(body), "--json", env_text)
    assert result.returncode == 0, result.stdout
    body.write_text(json.dumps({"amount": 501, "currency": "EUR", "a:b=c": 1}))
    result = laissez("verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool",
                     "billing.refund", "--class", "write", "--body", str(body), "--json", env_text)
    assert json.loads(result.stdout)["reason"] == "approval_required", result.stdout


@pytest.mark.parametrize(
    "flag, says",
    [
        (["--args", 'x.y={"a": "any"}'], "x.y"),  # no --tool x.y
        (["--args", 'shop.x={"a": {"one_of": [1, 1]}}'], "a.one_of"),  # a repeated value
        (["--args", 'shop.x={"a": {"each": "any"}}'], "max_items"),  # a missing field
        (["--args", 'shop.x={"a": {"range": [2, 1]}}'], "a.range"),
        (["--args", 'shop.x={"a": {"subpath": "/a/../b"}}'], "a.subpath"),
        (["--args", 'shop.x={"a": {"each": {"optional": "any"}, "max_items": 2}}'], "a.each"),
        (["--args", 'shop.x={"a": "any"}', "--args", 'shop.x={"b": "any"}'], "shop.x"),
        (["--budget", "shop.x:a=1", "--budget", "shop.x:a=2"], "shop.x"),
        (["--budget", "shop.x:a=0"], "shop.x:a=0"),
        (["--approval-unless", 'shop.x={"a": "any"}'], "--approval"),  # without --approval
    ],
)
def test_sign_refuses_what_is_not_the_json_form(tmp_path, laissez, issuer, flag, says):
    result = laissez("sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD,
                     "--tool", "shop.x=write", *flag)
    assert result.returncode == 2, f"{flag}: exit {result.returncode}, {result.stderr!r}"
    assert says in result.stderr.decode(), f"{flag}: the refusal should name {says!r}"


def test_delegated_narrower_args_verify_in_pycose(tmp_path, laissez, issuer, holder):
    child_key = make_key(tmp_path, "child")
    result = laissez(
        "sign", "--key", str(issuer.pem), "--agent", AGENT, "--aud", AUD,
        "--holder", str(holder.pub), "--tool", "billing.refund=write", "--max-uses", "3",
        "--args", "billing.refund=" + json.dumps(
            {"amount": {"range": [0, 1000]}, "note": {"optional": {"max_len": 100}}}),
        "--budget", "billing.refund:amount=1500",
    )
    assert result.returncode == 0, result.stderr
    root_text = result.stdout.decode().strip()
    child_args = {"amount": {"range": [1, 100]}, "note": {"eq": "ok"}}
    result = laissez(
        "delegate", "--key", str(holder.pem), "--parent", root_text,
        "--agent", "spiffe://acme.example/agent/helper", "--holder", str(child_key.pub),
        "--tool", "billing.refund=write", "--args", "billing.refund=" + json.dumps(child_args),
        "--budget", "billing.refund:amount=150",
    )
    assert result.returncode == 0, result.stderr
    chain = result.stdout.decode().strip().split(".")
    assert len(chain) == 2 and chain[0] == root_text, "the chain is root.child"
    root, child = unb64url(chain[0]), unb64url(chain[1])

    msg = pycose_verifies(child, holder.raw_public, ENVELOPE_AAD)
    assert msg is not None, "the child verifies with the parent's holder key"
    claims = assert_deterministic(msg.payload)
    assert claims[-65538] == hashlib.sha256(root).digest()
    grant = claims[GRANT]
    assert grant[1] == [["billing.refund", WRITE, {"amount": range_(1, 100), "note": eq("ok")}]]
    assert grant[7] == [["billing.refund", "amount", 150]]

    # The chain is decided by both envelopes' args: the child's are the narrower. The leaf
    # is holder-bound, so each call comes with the child holder's invocation.
    body = tmp_path / "b.json"
    call = ("--aud", AUD, "--tool", "billing.refund", "--class", "write", "--body", str(body))
    for n, (amount, note, reason) in enumerate(
        ((50, "ok", None), (500, "ok", "arguments_not_granted"),
         (50, "other", "arguments_not_granted"))
    ):
        body.write_text(json.dumps({"amount": amount, "note": note}))
        msg_id = f"m{n}"
        result = laissez("invoke", "--key", str(child_key.pem), "--envelope", ".".join(chain),
                         "--message-id", msg_id, *call)
        assert result.returncode == 0, result.stderr
        result = laissez("verify", "--trust", str(issuer.pub), *call, "--message-id", msg_id,
                         "--invocation", result.stdout.decode().strip(), "--json",
                         ".".join(chain))
        out = json.loads(result.stdout)
        assert (result.returncode, out["reason"]) == (0 if reason is None else 1, reason), (
            f"amount {amount}, note {note}: {out}"
        )

    # Wider args than the parent's: delegate refuses, naming the member.
    for wider, member in (
        ({"amount": {"range": [0, 2000]}}, "amount"),
        ({"amount": {"range": [1, 10]}, "note": {"max_len": 100}, "x": "any"}, "x"),
    ):
        result = laissez(
            "delegate", "--key", str(holder.pem), "--parent", root_text, "--agent", "a2",
            "--holder", str(child_key.pub), "--tool", "billing.refund=write",
            "--args", "billing.refund=" + json.dumps(wider),
        )
        assert result.returncode == 2, f"{wider}: {result.stderr!r}"
        assert member in result.stderr.decode(), f"{wider}: {result.stderr!r}"
