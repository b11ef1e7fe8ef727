"""Arguments and budgets against an independent implementation (cbor2 + pycose), through the
real `laissez` binary (docs/spec.md §16, §17); the other direction is test_args_sign_interop.py.

(a) envelopes that this file encodes and pycose signs, with three-element tool grants
    covering every constraint kind, budgets (grant key 7) and an approval rule with `unless`,
    are decided by `laissez verify`: bodies allowed, `arguments_not_granted` naming the
    failing member, budgets spent through a redb ledger until `budget_exhausted`, waivers
    holding and failing, and malformed args shapes decided `malformed`.

The CBOR here is written from the contract's text, not from laissez's Rust: map keys sorted
by the bytewise order of their encodings, one_of / not_one_of values sorted likewise.
"""

import json
import os
import time

import cbor2
import pytest

from conftest import make_key
from test_interop import AGENT, AUD, ENVELOPE_AAD, b64url, sign1

READ, WRITE, DESTRUCTIVE = 1, 2, 4
GRANT = -65537


# --- The contract's deterministic encoding, written independently ------------------------


class AsIs(dict):
    """A map encoded in the order it was written: to build unsorted (malformed) args."""


def _ordered(value):
    if isinstance(value, AsIs):
        return value
    if isinstance(value, dict):
        items = [(k, _ordered(v)) for k, v in value.items()]
        # RFC 8949 §4.2.1: keys sorted by the bytewise order of their own encodings.
        items.sort(key=lambda kv: cbor2.dumps(kv[0]))
        return dict(items)
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def encode(value) -> bytes:
    # cbor2 without `canonical` keeps a dict's order and writes shortest-form integers and
    # definite lengths, so the order chosen in _ordered is the order on the wire.
    return cbor2.dumps(_ordered(value))


def by_encoding(values):
    return sorted(values, key=cbor2.dumps)


# The constraint kinds of the contract's §10, as CBOR arrays.
ANY = [0]


def optional(c):
    return [1, c]


def eq(v):
    return [2, v]


def one_of(*vs):
    return [3, by_encoding(vs)]


def not_one_of(*vs):
    return [4, by_encoding(vs)]


def range_(lo, hi):
    return [5, lo, hi]


def prefix(s):
    return [6, s]


def suffix(s):
    return [7, s]


def subpath(s):
    return [8, s]


def max_len(n):
    return [9, n]


def obj(args):
    return [10, args]


def each(c, n):
    return [11, c, n]


def all_(*cs):
    return [12, list(cs)]


def envelope(issuer, tools, *, classes=READ, max_uses=1, approval=None, budgets=None) -> bytes:
    now = int(time.time())
    grant = {0: 1, 1: tools, 2: classes, 3: max_uses}
    if approval is not None:
        grant[6] = approval
    if budgets is not None:
        grant[7] = budgets
    claims = {2: AGENT, 3: AUD, 4: now + 300, 5: now - 10, 7: os.urandom(16), GRANT: grant}
    return sign1(encode(claims), issuer, ENVELOPE_AAD)


def verify(laissez, tmp_path, issuer, env, tool, cls, body=None, extra=()):
    """`laissez verify --json` of ENV for (tool, class) with BODY: (exit code, JSON)."""
    args = ["verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", tool, "--class", cls]
    if body is not None:
        path = tmp_path / "body.json"
        path.write_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
        args += ["--body", str(path)]
    result = laissez(*args, *extra, "--json", b64url(env))
    assert result.stdout, f"verify printed no JSON: {result.stderr!r}"
    return result.returncode, json.loads(result.stdout)


# --- (a) laissez decides what this file signs ---------------------------------------------

ORDER_TOOL = "shop.order.create"

# Every constraint kind in one grant. The one_of / not_one_of values mix types so that the
# bytewise order of their encodings (1, 2, "high", true / 7, "IR", "KP", null) differs from
# the length-first order of RFC 7049's canonical CBOR.
ORDER_ARGS = {
    "customer": all_(prefix("cus_"), max_len(12)),
    "currency": one_of("USD", "EUR", "GBP"),
    "country": not_one_of(None, "KP", "IR", 7),
    "priority": optional(one_of(True, "high", 2, 1)),
    "amount": range_(1, 100_000),
    "mode": eq("live"),
    "note": optional(ANY),
    "attachment": optional(all_(subpath("/uploads/acme"), suffix(".pdf"))),
    "items": each(obj({"sku": prefix("SKU-"), "qty": range_(1, None)}), 4),
    "meta": obj({"*": max_len(8), "source": eq("web")}),
    "limit": range_(None, 0),
}

GOOD_ORDER = {
    "customer": "cus_42",
    "currency": "EUR",
    "country": "FR",
    "priority": "high",
    "amount": 500,
    "mode": "live",
    "note": {"anything": [1.5, None]},
    "attachment": "/uploads/acme/./2024/../inv.pdf",
    "items": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 3}, {"sku": "SKU-3", "qty": 9}],
    "meta": {"source": "web", "campaign": "spring"},
    "limit": -3,
}


def order_envelope(issuer) -> bytes:
    return envelope(issuer, [[ORDER_TOOL, WRITE, ORDER_ARGS]])


DROP = object()  # a member with_ removes


def with_(body, **changes):
    out = dict(body)
    for k, v in changes.items():
        if v is DROP:
            del out[k]
        else:
            out[k] = v
    return out


def test_every_kind_holds_for_a_good_body(tmp_path, laissez, issuer):
    env = order_envelope(issuer)
    code, out = verify(laissez, tmp_path, issuer, env, ORDER_TOOL, "write", GOOD_ORDER)
    assert (code, out["allowed"], out["reason"]) == (0, True, None), out
    # Optional members may be absent; one_of accepts each of its mixed-type values.
    for body in (
        with_(GOOD_ORDER, priority=DROP, note=DROP, attachment=DROP),
        with_(GOOD_ORDER, priority=1, items=[]),
        with_(GOOD_ORDER, priority=True, currency="GBP", country=8, amount=100_000),
        with_(GOOD_ORDER, country="kp", limit=0),
        with_(GOOD_ORDER, attachment="/uploads/acme/x/y.pdf", meta={"source": "web"}),
    ):
        code, out = verify(laissez, tmp_path, issuer, env, ORDER_TOOL, "write", body)
        assert code == 0, f"{body} should satisfy the args: {out}"


@pytest.mark.parametrize(
    "changes, member",
    [
        ({"items": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-2", "qty": 1}, {"sku": "X", "qty": 1}]},
         "items[2].sku"),
        ({"items": [{"sku": "SKU-1", "qty": 0}]}, "items[0].qty"),
        ({"items": [{"sku": "SKU-1", "qty": 1, "gift": True}]}, "items[0].gift"),
        ({"items": [{"sku": "SKU-1", "qty": 1}] * 5}, "items"),
        ({"amount": 0}, "amount"),
        ({"amount": 100_001}, "amount"),
        ({"amount": "500"}, "amount"),
        ({"customer": "cus_123456789"}, "customer"),
        ({"customer": "usr_1"}, "customer"),
        ({"currency": "JPY"}, "currency"),
        ({"country": "KP"}, "country"),
        ({"country": None}, "country"),
        ({"country": 7}, "country"),
        ({"country": ["FR"]}, "country"),
        ({"priority": 3}, "priority"),
        ({"priority": "1"}, "priority"),
        ({"mode": "test"}, "mode"),
        ({"mode": DROP}, "mode"),
        ({"attachment": "/uploads/acme/../other/inv.pdf"}, "attachment"),
        ({"attachment": "/uploads/acmex/inv.pdf"}, "attachment"),
        ({"attachment": "/uploads/acme/inv.txt"}, "attachment"),
        ({"meta": {"source": "app"}}, "meta.source"),
        ({"meta": {"source": "web", "campaign": "too-long!"}}, "meta.campaign"),
        ({"meta": "web"}, "meta"),
        ({"limit": 1}, "limit"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_a_failing_member_is_named(tmp_path, laissez, issuer, changes, member):
    env = order_envelope(issuer)
    body = with_(GOOD_ORDER, **changes)
    code, out = verify(laissez, tmp_path, issuer, env, ORDER_TOOL, "write", body)
    assert (code, out["reason"]) == (1, "arguments_not_granted"), f"{changes}: {out}"
    assert out.get("detail") == member, f"{changes}: the detail should name {member!r}: {out}"


@pytest.mark.parametrize(
    "body",
    [
        None,  # no body at all
        b"[1, 2]",  # not an object
        b'{"amount": 1',  # not JSON
        b'{"amount": 1, "amount": 2}',  # a member twice
        b'{"amount": 1, "\\u0061mount": 2}',  # a member twice, once escaped
        b'{"a": "\\ud800"}',  # a lone surrogate
        b"\xef\xbb\xbf{}",  # a byte order mark
    ],
)
def test_a_body_that_is_no_json_object_is_named_body(tmp_path, laissez, issuer, body):
    env = envelope(issuer, [["billing.refund", WRITE, {"*": ANY}]])
    code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "write", body)
    assert (code, out["reason"], out.get("detail")) == (1, "arguments_not_granted", "body"), out


def test_args_grant_only_their_class_and_any_grant_that_holds_suffices(tmp_path, laissez, issuer):
    tools = [
        ["billing.refund", WRITE, {"amount": range_(0, 100)}],
        ["billing.*", READ | WRITE, {"amount": range_(1000, 2000), "*": ANY}],
    ]
    env = envelope(issuer, tools)
    for amount, expected in ((50, 0), (1500, 0), (500, 1)):
        code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "write",
                           {"amount": amount})
        assert code == expected, f"amount {amount}: {out}"
    code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "destructive",
                       {"amount": 50})
    assert out["reason"] == "class_not_granted", out
    # The JSON view shows the grant with its args in the contract's JSON form.
    code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "write", {"amount": 1})
    assert out["claims"]["grant"]["tools"] == [
        ["billing.refund", ["write"], {"amount": {"range": [0, 100]}}],
        ["billing.*", ["read", "write"], {"*": "any", "amount": {"range": [1000, 2000]}}],
    ], out["claims"]["grant"]


def spend(laissez, tmp_path, issuer, env, ledger, msg_id, body):
    return verify(laissez, tmp_path, issuer, env, "billing.refund", "write", body,
                  extra=("--message-id", msg_id, "--ledger", str(ledger)))


def test_budgets_are_spent_through_the_ledger(tmp_path, laissez, issuer):
    env = envelope(
        issuer,
        ["billing.*"],
        classes=WRITE,
        max_uses=10,
        budgets=[["billing.*", "amount", 1000], ["billing.refund", "cents", 5]],
    )
    ledger = tmp_path / "ledger.redb"

    def refund(msg, amount, cents=0):
        return spend(laissez, tmp_path, issuer, env, ledger, msg, {"amount": amount, "cents": cents})

    code, out = refund("m1", 400)
    assert code == 0, out
    assert out["claims"]["grant"]["budgets"] == [
        ["billing.*", "amount", 1000], ["billing.refund", "cents", 5]
    ], out["claims"]["grant"]
    assert refund("m2", 500)[0] == 0
    code, out = refund("m3", 200)
    assert (code, out["reason"]) == (1, "budget_exhausted"), f"400+500+200 > 1000: {out}"
    assert out.get("detail") == "billing.*:amount", out
    # A denied call spent nothing: the same message id fits with an amount that does.
    assert refund("m3", 100, cents=5)[0] == 0, "a denied call must not have spent"
    assert refund("m4", 0)[0] == 0, "an amount of 0 at the limit passes no limit"
    code, out = refund("m5", 1)
    assert (code, out["reason"], out.get("detail")) == (1, "budget_exhausted", "billing.*:amount")
    # The second budget is spent too: cents is at its limit 5.
    code, out = spend(laissez, tmp_path, issuer, env, ledger, "m6", {"amount": 0, "cents": 1})
    assert (code, out["reason"], out.get("detail")) == (1, "budget_exhausted", "billing.refund:cents")
    # A message already spent is a replay, never charged again.
    code, out = refund("m1", 400)
    assert (code, out["reason"]) == (1, "replayed"), out
    # Another tool under billing.* is spent from the same budget (and cents does not apply).
    code, out = verify(laissez, tmp_path, issuer, env, "billing.charge", "write", {"amount": 1},
                       extra=("--message-id", "m7", "--ledger", str(ledger)))
    assert (code, out["reason"], out.get("detail")) == (1, "budget_exhausted", "billing.*:amount")


@pytest.mark.parametrize(
    "body, detail",
    [
        (None, "body"),
        (b"[]", "body"),
        ({"other": 1}, "amount"),
        ({"amount": -1}, "amount"),
        ({"amount": 2**53}, "amount"),
        ({"amount": 1.0}, "amount"),
        ({"amount": "10"}, "amount"),
    ],
)
def test_a_budget_needs_an_integer_amount(tmp_path, laissez, issuer, body, detail):
    env = envelope(issuer, ["billing.*"], classes=WRITE, budgets=[["billing.*", "amount", 2**53 - 1]])
    code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "write", body)
    assert (code, out["reason"]) == (1, "arguments_not_granted"), f"{body!r}: {out}"
    assert out.get("detail") == detail, f"{body!r}: {out}"
    code, out = verify(laissez, tmp_path, issuer, env, "billing.refund", "write",
                       {"amount": 2**53 - 1, "other": "x"})
    assert code == 0, f"2^53-1 is a valid amount: {out}"
    # A budget whose pattern does not match the tool does not apply.
    env = envelope(issuer, ["*"], classes=WRITE, budgets=[["billing.*", "amount", 10]])
    code, out = verify(laissez, tmp_path, issuer, env, "crm.read", "write", body)
    assert code == 0, f"a budget on billing.* applies to no crm call: {out}"


def waiver_envelope(issuer, approver, unless) -> bytes:
    return envelope(
        issuer,
        ["billing.refund"],
        classes=WRITE,
        approval={1: WRITE, 2: 1, 3: [approver.kid], 4: unless},
    )


def test_a_waiver_holds_and_fails(tmp_path, laissez, issuer):
    approver = make_key(tmp_path, "approver")
    unless = [
        ["crm.*", {"amount": ANY}],
        ["billing.refund", {"amount": range_(None, 500), "order": obj({"region": eq("eu")})}],
    ]
    env = waiver_envelope(issuer, approver, unless)
    approvers = ("--approvers", str(approver.pub))

    def decide(body, extra=()):
        return verify(laissez, tmp_path, issuer, env, "billing.refund", "write", body,
                      extra=approvers + tuple(extra))

    # Read open at every level: members the waiver does not name do not matter.
    held = {"amount": 500, "reason": "damaged", "order": {"region": "eu", "id": 7}}
    code, out = decide(held)
    assert (code, out["allowed"]) == (0, True), f"the waiver should hold: {out}"
    assert out["claims"]["grant"]["approval"]["unless"] == [
        ["crm.*", {"amount": "any"}],
        ["billing.refund", {"amount": {"range": [None, 500]},
                            "order": {"object": {"region": {"eq": "eu"}}}}],
    ], out["claims"]["grant"]["approval"]

    for body in (
        {"amount": 501, "order": {"region": "eu"}},
        {"amount": 5, "order": {"region": "us"}},
        {"order": {"region": "eu"}},  # a named member absent
        {"amount": 5.0, "order": {"region": "eu"}},
        b"not json",
        None,
    ):
        code, out = decide(body)
        assert (code, out["reason"]) == (1, "approval_required"), f"{body!r}: {out}"
    # The worker's require_approval outranks the envelope's waiver.
    code, out = decide(held, ("--require-approval", "write"))
    assert (code, out["reason"]) == (1, "approval_required"), out


# Malformed args, budgets and waivers: each a grant laissez must refuse as `malformed`,
# next to the well-formed grant it differs from (which must be allowed).
MALFORMED = {
    "unsorted members": AsIs({"b": ANY, "a": ANY}),
    "unsorted one_of": {"a": [3, [2, 1]]},
    "unsorted mixed one_of": {"a": [3, [True, "x"]]},
    "repeated one_of": {"a": [3, [1, 1]]},
    "unsorted not_one_of": {"a": [4, ["b", "a"]]},
    "range min > max": {"a": range_(10, 1)},
    "range both null": {"a": range_(None, None)},
    "optional inside each": {"a": each(optional(ANY), 3)},
    "optional inside all": {"a": all_(optional(ANY), ANY)},
    "optional star": {"*": optional(ANY)},
    "subpath with ..": {"a": subpath("/srv/../etc")},
    "subpath with .": {"a": subpath("/srv/./x")},
    "subpath trailing /": {"a": subpath("/srv/")},
    "subpath relative": {"a": subpath("srv")},
    "all of one": {"a": [12, [ANY]]},
    "each without count": {"a": [11, ANY]},
    "unknown kind": {"a": [13]},
    "empty args": {},
}


def well_formed(tmp_path, laissez, issuer, args, budgets=None, unless=None):
    tools = [["t.x", WRITE, args]]
    approval = None
    if unless is not None:
        approval = {1: DESTRUCTIVE, 2: 1, 3: [make_key(tmp_path, "ap").kid], 4: unless}
    env = envelope(issuer, tools, budgets=budgets, approval=approval)
    return verify(laissez, tmp_path, issuer, env, "t.x", "write", {"a": 1, "b": 1})


def test_the_well_formed_twins_are_allowed(tmp_path, laissez, issuer):
    code, out = well_formed(tmp_path, laissez, issuer, {"a": ANY, "b": ANY})
    assert code == 0, out
    code, out = well_formed(tmp_path, laissez, issuer, {"a": one_of(1, 2, True), "b": range_(1, 1)})
    assert code == 0, out
    code, out = well_formed(tmp_path, laissez, issuer, {"*": ANY},
                            budgets=[["t.*", "a", 1], ["t.x", "a", 1]],
                            unless=[["t.x", {"a": ANY}]])
    assert code == 0, out


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_args_are_malformed(tmp_path, laissez, issuer, name):
    code, out = well_formed(tmp_path, laissez, issuer, MALFORMED[name])
    assert (code, out["reason"]) == (1, "malformed"), f"{name}: {out}"


@pytest.mark.parametrize(
    "budgets",
    [
        [["t.*", "a", 1], ["t.*", "a", 2]],  # one pattern and member twice
        [["t.*", "a", 0]],  # limit below 1
        [["t.*", "a", 2**53]],  # limit above 2^53-1
        [["t.*", "a"]],  # no limit
        [],  # no budget
        [["t.*", "a", 1]] * 9,  # more than 8
    ],
)
def test_malformed_budgets_are_malformed(tmp_path, laissez, issuer, budgets):
    code, out = well_formed(tmp_path, laissez, issuer, {"*": ANY}, budgets=budgets)
    assert (code, out["reason"]) == (1, "malformed"), f"{budgets}: {out}"


@pytest.mark.parametrize(
    "unless",
    [
        [],  # no waiver
        [["t.x", AsIs({"b": ANY, "a": ANY})]],  # unsorted members
        [["t.x", {"a": [3, [2, 1]]}]],  # unsorted values
        [["t.x"]],  # no args
        [["t.x", {"a": ANY}]] * 9,  # more than 8
    ],
)
def test_malformed_waivers_are_malformed(tmp_path, laissez, issuer, unless):
    code, out = well_formed(tmp_path, laissez, issuer, {"*": ANY}, unless=unless)
    assert (code, out["reason"]) == (1, "malformed"), f"{unless}: {out}"


def nested(levels):
    """A member constraint `levels` optional/object/each/all deep (optional outermost) and a
    value that satisfies it."""
    c, v = eq(1), 1
    for i in range(levels - 1):
        if i % 3 == 0:
            c, v = obj({"x": c}), {"x": v}
        elif i % 3 == 1:
            c, v = each(c, 2), [v]
        else:
            c, v = all_(c, ANY), v
    return optional(c), v


def test_eight_levels_of_nesting_are_read_and_nine_are_malformed(tmp_path, laissez, issuer):
    constraint, value = nested(8)
    env = envelope(issuer, [["t.x", WRITE, {"a": constraint}]])
    code, out = verify(laissez, tmp_path, issuer, env, "t.x", "write", {"a": value})
    assert code == 0, f"the contract's deepest args must be accepted: {out}"
    code, out = verify(laissez, tmp_path, issuer, env, "t.x", "write", {"a": {"x": [{"x": 2}]}})
    assert (code, out["reason"]) == (1, "arguments_not_granted"), out
    constraint, value = nested(9)
    env = envelope(issuer, [["t.x", WRITE, {"a": constraint}]])
    code, out = verify(laissez, tmp_path, issuer, env, "t.x", "write", {"a": value})
    assert (code, out["reason"]) == (1, "malformed"), f"nine levels (docs/spec.md §16): {out}"
