"""Arguments (docs/spec.md §16), budgets (§17) and approval waivers (§12) from Python:
`sign`/`delegate` take `args=`, `budgets=` and `unless=` in the JSON form the command line
takes, refuse what `laissez sign` refuses with the same codes and paths, and the verifier
reads a body with or without a call: `arguments_not_granted` naming the member,
`approval_required` unless a waiver holds, and `budget_exhausted` through a ledger."""

from __future__ import annotations

import json

import pytest

import laissez

AUD = "billing-queue"
REFUND = "billing.refund"
CAP = {"amount": {"range": [0, 500]}, "order": {"prefix": "ord-"}}


@pytest.fixture
def keys():
    return {n: laissez.SecretKey.generate() for n in ("issuer", "agent", "sub", "alice", "bob")}


def refunds(keys, **kw) -> laissez.Envelope:
    kw.setdefault("tools", [REFUND])
    kw.setdefault("classes", "write")
    kw.setdefault("max_uses", 10)
    return laissez.sign(keys["issuer"], agent="agent-py", aud=AUD, **kw)


def verifier(keys, **kw) -> laissez.Verifier:
    return laissez.Verifier(keys["issuer"].public_key(), AUD, tools={REFUND: "write"}, **kw)


def body(amount, order="ord-1") -> bytes:
    return json.dumps({"amount": amount, "order": order}).encode()


# Signing: what goes on the wire, and reads back in the JSON form.


def test_args_go_on_the_grant_and_read_back_in_their_json_form(keys):
    env = refunds(keys, args={REFUND: CAP})
    grant = env.claims["grant"]
    # A grant with args names its classes (the bare pattern takes `classes`).
    assert grant["tools"] == [[REFUND, ["write"], CAP]]
    # JSON text is the same args.
    assert refunds(keys, args={REFUND: json.dumps(CAP)}) .claims["grant"]["tools"] == grant["tools"]
    # one_of values are sorted as the wire needs; a tool's own classes are kept.
    env = refunds(keys, tools=["billing.refund=write+read", "crm.read"],
                  args={REFUND: {"currency": {"one_of": ["usd", "eur"]}, "*": "any"}})
    assert env.claims["grant"]["tools"] == [
        [REFUND, ["read", "write"], {"*": "any", "currency": {"one_of": ["eur", "usd"]}}],
        "crm.read",
    ]


def test_budgets_and_waivers_read_back_in_their_json_form(keys):
    alice = keys["alice"].public_key()
    env = refunds(keys, budgets=[(REFUND, "amount", 1000)],
                  approval=("write", 1, [alice]),
                  unless=[(REFUND, {"amount": {"range": [None, 100]}})])
    grant = env.claims["grant"]
    assert grant["budgets"] == [[REFUND, "amount", 1000]]
    assert grant["approval"] == {
        "classes": ["write"], "m": 1, "approvers": [alice.kid],
        "unless": [[REFUND, {"amount": {"range": [None, 100]}}]],
    }
    # No unless: the rule has none.
    assert "unless" not in refunds(keys, approval=("write", 1, [alice])).claims["grant"]["approval"]


def sign_error(keys, **kw) -> laissez.SignError:
    with pytest.raises(laissez.SignError) as e:
        refunds(keys, **kw)
    return e.value


def test_bad_args_are_refused_naming_what_and_where(keys):
    e = sign_error(keys, args={REFUND: {"amount": {"range": [0, 1.5]}}})
    assert e.reason == "not_an_integer" and "at amount.range" in str(e) and REFUND in str(e)
    e = sign_error(keys, args={REFUND: {"amount": {"range": [10, 5]}}})
    assert e.reason == "range_order" and "at amount.range: min 10 is above max 5" in str(e)
    e = sign_error(keys, args={REFUND: {"amount": {"eq": 2**64}}})
    assert e.reason == "not_json" and "at amount.eq" in str(e)
    e = sign_error(keys, args={REFUND: {"amount": {"eq": float("nan")}}})
    assert e.reason == "not_json" and "at amount.eq" in str(e)
    e = sign_error(keys, args={REFUND: {"lines": {"object": {1: "any"}}}})
    assert e.reason == "not_json" and "at lines.object" in str(e) and "member name 1" in str(e)
    e = sign_error(keys, args={REFUND: {"amount": {"eq": b"5"}}})
    assert e.reason == "not_json" and "bytes" in str(e)
    e = sign_error(keys, args={REFUND: {"amount": {"between": [1, 2]}}})
    assert e.reason == "unknown_kind" and "between" in str(e)
    e = sign_error(keys, args={REFUND: {}})
    assert e.reason == "member_count"
    # A repeated member cannot be written as a dict; as JSON text it is refused.
    e = sign_error(keys, args={REFUND: '{"amount": "any", "amount": {"eq": 1}}'})
    assert e.reason == "duplicate_member" and '"amount" is repeated' in str(e)
    e = sign_error(keys, args={REFUND: "{not json"})
    assert e.reason == "not_json"
    # A pattern no tool names, as `--args` for a pattern no `--tool` names.
    e = sign_error(keys, args={"billing.*": CAP})
    assert e.reason == "args_without_tool" and "billing.*" in str(e)
    with pytest.raises(TypeError):
        refunds(keys, args=[(REFUND, CAP)])
    # A self-containing object is refused, not a crash.
    loop: dict = {}
    loop["object"] = {"x": loop}
    assert sign_error(keys, args={REFUND: {"x": loop}}).reason == "not_json"


def test_bad_budgets_and_waivers_are_refused(keys):
    assert sign_error(keys, budgets=[(REFUND, "amount", 0)]).reason == "budget_limit"
    assert sign_error(keys, budgets=[(REFUND, "amount", 2**53)]).reason == "budget_limit"
    assert sign_error(keys, budgets=[(REFUND, "amount", -1)]).reason == "budget_limit"
    assert sign_error(keys, budgets=[(REFUND, "amount", 2**70)]).reason == "budget_limit"
    refunds(keys, budgets=[(REFUND, "amount", 2**53 - 1)])
    e = sign_error(keys, budgets=[(REFUND, "amount", 5), (REFUND, "amount", 6)])
    assert e.reason == "budget_twice"
    assert sign_error(keys, budgets=[("Billing", "amount", 5)]).reason == "tool_pattern"
    with pytest.raises(TypeError):
        refunds(keys, budgets=[(REFUND, 5)])
    waiver = [(REFUND, {"amount": {"range": [None, 100]}})]
    e = sign_error(keys, unless=waiver)
    assert e.reason == "unless_without_approval"
    approval = ("write", 1, [keys["alice"].public_key()])
    e = sign_error(keys, approval=approval, unless=[(REFUND, {"amount": {"range": [None, 1.0]}})])
    assert e.reason == "not_an_integer" and "amount.range" in str(e)
    assert sign_error(keys, approval=approval, unless=[]).reason == "waiver_count"
    assert sign_error(keys, approval=approval, unless=waiver * 9).reason == "waiver_count"
    assert sign_error(keys, approval=approval, unless=[("Bad", {"a": "any"})]).reason == "tool_pattern"


# Verifying: with a call, and a body without one.


def test_a_call_outside_the_args_is_arguments_not_granted_naming_the_member(keys):
    env = refunds(keys, args={REFUND: CAP})
    v = verifier(keys)
    assert v.verify(env, tool=REFUND, message_id="m-1", body=body(500)).allowed
    d = v.verify(env, tool=REFUND, message_id="m-2", body=body(501))
    assert (d.reason, d.detail) == ("arguments_not_granted", "amount")
    d = v.verify(env, tool=REFUND, message_id="m-3", body=body(5, order="x-1"))
    assert (d.reason, d.detail) == ("arguments_not_granted", "order")
    # Unnamed members are refused: a grant's args are closed.
    d = v.verify(env, tool=REFUND, message_id="m-4",
                 body=json.dumps({"amount": 5, "order": "ord-1", "to": "me"}).encode())
    assert (d.reason, d.detail) == ("arguments_not_granted", "to")
    d = v.verify(env, tool=REFUND, message_id="m-5", body=b"[1]")
    assert (d.reason, d.detail) == ("arguments_not_granted", "body")
    with pytest.raises(laissez.Denied) as denied:
        v.check(env, tool=REFUND, message_id="m-6", body=body(1000))
    assert denied.value.reason == "arguments_not_granted" and denied.value.detail == "amount"


def test_nested_paths_name_the_item(keys):
    lines = {"items": {"each": {"object": {"sku": {"prefix": "sku-"}, "n": {"range": [1, 9]}}},
                       "max_items": 4}}
    env = refunds(keys, args={REFUND: lines})
    items = [{"sku": "sku-1", "n": 1}, {"sku": "sku-2", "n": 2}, {"sku": "abc", "n": 3}]
    d = verifier(keys).verify(env, tool=REFUND, body=json.dumps({"items": items}).encode())
    assert (d.reason, d.detail) == ("arguments_not_granted", "items[2].sku")


def test_a_body_without_a_call_is_read_for_the_args(keys):
    env = refunds(keys, args={REFUND: CAP})
    v = verifier(keys)
    assert v.verify(env, tool=REFUND, body=body(20)).allowed
    d = v.verify(env, tool=REFUND, body=body(900))
    assert (d.reason, d.detail) == ("arguments_not_granted", "amount")
    # No body: a grant with args never holds.
    assert v.verify(env, tool=REFUND).reason == "arguments_not_granted"
    # A call with no body is an empty body.
    assert v.verify(env, tool=REFUND, message_id="m-1").reason == "arguments_not_granted"


def test_a_budget_needs_its_member_in_the_body(keys):
    env = refunds(keys, budgets=[(REFUND, "amount", 1000)])
    v = verifier(keys)
    assert v.verify(env, tool=REFUND, body=body(1000)).allowed
    for bad in (b'{"order": "ord-1"}', body(-1), body("5"), body(2**53)):
        assert v.verify(env, tool=REFUND, body=bad).reason == "arguments_not_granted", bad
    assert v.verify(env, tool=REFUND).reason == "arguments_not_granted"


def test_budgets_are_spent_through_the_ledger(keys, tmp_path):
    env = refunds(keys, budgets=[(REFUND, "amount", 1000)])
    v = verifier(keys, ledger=laissez.Ledger(tmp_path / "uses.redb"))
    first = v.verify(env, tool=REFUND, message_id="m-1", body=body(600))
    assert first.use == 1 and repr(first) == "Decision(allowed=True, use=1)"
    d = v.verify(env, tool=REFUND, message_id="m-2", body=body(401))
    assert (d.allowed, d.reason, d.detail, d.use) == (False, "budget_exhausted", "billing.refund:amount", None)
    # A denied call spent nothing: what is left still fits.
    assert v.verify(env, tool=REFUND, message_id="m-3", body=body(400)).use == 2
    assert v.verify(env, tool=REFUND, message_id="m-4", body=body(1)).reason == "budget_exhausted"
    assert v.verify(env, tool=REFUND, message_id="m-5", body=body(0)).use == 3
    # A message already spent is not charged twice: it is a replay, whatever its amount.
    assert v.verify(env, tool=REFUND, message_id="m-1", body=body(600)).reason == "replayed"
    # The ledger is a file: a new verifier over it, once the first let go, sees what was spent.
    del v
    again = verifier(keys, ledger=laissez.Ledger(tmp_path / "uses.redb"))
    assert again.verify(env, tool=REFUND, message_id="m-6", body=body(1)).reason == "budget_exhausted"


def test_a_waiver_lifts_the_approval_for_small_refunds_only(keys):
    alice, bob = keys["alice"].public_key(), keys["bob"].public_key()
    env = refunds(keys, approval=("write", 2, [alice, bob]),
                  unless=[(REFUND, {"amount": {"range": [None, 100]}})])
    v = verifier(keys, approvers=[alice, bob])
    assert v.verify(env, tool=REFUND, message_id="m-1", body=body(100)).allowed
    d = v.verify(env, tool=REFUND, message_id="m-2", body=body(101))
    assert (d.reason, d.detail) == ("approval_required", "0 of 2")
    # Read open: members the waiver does not name are allowed; without a body none holds.
    assert v.verify(env, tool=REFUND, body=body(5)).allowed
    assert v.verify(env, tool=REFUND).reason == "approval_required"
    # The large one runs with its approvals.
    approvals = [laissez.approve(keys[n], env, aud=AUD, message_id="m-2", tool=REFUND,
                                 cls="write", body=body(101)) for n in ("alice", "bob")]
    assert v.verify(env, tool=REFUND, message_id="m-2", body=body(101), approvals=approvals).allowed
    # The worker's policy outranks the envelope's waiver.
    strict = verifier(keys, approvers=[alice, bob], require_approval="write")
    assert strict.verify(env, tool=REFUND, message_id="m-1", body=body(5)).reason == "approval_required"


# Delegation: a child's args are narrower than its parent's.


def test_delegate_takes_args_and_refuses_a_wider_range_naming_the_member(keys):
    parent = refunds(keys, args={REFUND: CAP}, holder=keys["agent"].public_key())
    sub = keys["sub"].public_key()

    def child(args, **kw):
        return laissez.delegate(keys["agent"], parent, agent="sub-agent", tools=[REFUND],
                                classes="write", holder=sub, args={REFUND: args}, **kw)

    narrower = {"amount": {"range": [0, 50]}, "order": {"prefix": "ord-7"}}
    chain = child(narrower, budgets=[(REFUND, "amount", 60)])
    assert chain.claims[1]["grant"]["tools"] == [[REFUND, ["write"], narrower]]
    assert chain.claims[1]["grant"]["budgets"] == [[REFUND, "amount", 60]]
    v = verifier(keys)

    def call(amount, message_id):
        b = body(amount, order="ord-7")
        inv = laissez.invoke(keys["sub"], chain.leaf, aud=AUD, message_id=message_id,
                             tool=REFUND, cls="write", body=b)
        return v.verify(chain, tool=REFUND, message_id=message_id, body=b, invocation=inv)

    assert call(50, "m-1").allowed
    # The child's own args hold too: the parent's alone would allow this.
    d = call(51, "m-2")
    assert (d.reason, d.detail) == ("arguments_not_granted", "amount")

    with pytest.raises(laissez.SignError) as e:
        child({"amount": {"range": [0, 501]}, "order": {"prefix": "ord-"}})
    assert e.value.reason == "not_attenuated" and e.value.field == "args"
    assert e.value.path == "amount" and "amount" in str(e.value)
    # A child without args under a parent grant with args is wider too.
    with pytest.raises(laissez.SignError) as e:
        laissez.delegate(keys["agent"], parent, agent="sub-agent", tools=[REFUND],
                         classes="write", holder=sub)
    assert (e.value.reason, e.value.field, e.value.path) == ("not_attenuated", "args", "body")
    # The child may add its own approval rule, with waivers.
    waiver = [(REFUND, {"amount": {"range": [None, 10]}})]
    ruled = child(narrower, approval=("write", 1, [keys["alice"].public_key()]), unless=waiver)
    assert ruled.claims[1]["grant"]["approval"]["unless"] == [list(waiver[0])]
    with pytest.raises(laissez.SignError) as e:
        child(narrower, unless=waiver)
    assert e.value.reason == "unless_without_approval"
    # A member the parent's args do not allow.
    with pytest.raises(laissez.SignError) as e:
        child({**narrower, "note": "any"})
    assert (e.value.field, e.value.path) == ("args", "note")
    # Other refusals have no path.
    with pytest.raises(laissez.SignError) as e:
        child(narrower, max_uses=11)
    assert (e.value.field, e.value.path) == ("max_uses", None)


# The command line: the same bytes, the same JSON, the same verdicts.


def test_the_cli_signs_the_same_grant_and_decides_alike(issuer, tmp_path, cli):
    cap = '{"order": {"prefix": "ord-"}, "amount": {"range": [0, 500]}}'
    common = ["--agent", "agent-py", "--aud", AUD, "--tool", REFUND, "--classes", "write",
              "--max-uses", "10", "--nbf", "1900000000", "--ttl", "1h"]
    signed = cli("sign", "--key", str(issuer.path), *common, "--args", f"{REFUND}={cap}",
                 "--budget", f"{REFUND}:amount=1000", "--json")
    assert signed.returncode == 0, signed.stderr
    theirs = json.loads(signed.stdout)["claims"]["grant"]
    env = laissez.sign(issuer.key, agent="agent-py", aud=AUD, tools=[REFUND], classes="write",
                       max_uses=10, nbf=1900000000, ttl="1h", args={REFUND: cap},
                       budgets=[(REFUND, "amount", 1000)])
    # Claims hold a random cti, so the grants compare, not the bytes.
    assert env.claims["grant"] == theirs
    inspected = cli("inspect", "--json", env.text)
    assert json.loads(inspected.stdout)["claims"] == env.claims

    v = verifier_from(issuer)
    for amount in (500, 501):
        (tmp_path / "body").write_bytes(body(amount))
        ours = v.verify(env, tool=REFUND, message_id="m-1", body=body(amount), now=1900000001)
        # A body without a call gets the call's verdict here (no approval, no invocation).
        assert v.verify(env, tool=REFUND, body=body(amount), now=1900000001) == ours
        for call in (["--message-id", "m-1"], []):
            run = cli("verify", "--trust", str(issuer.pub), "--aud", AUD, "--tool", REFUND,
                      "--class", "write", *call, "--body", "body", "--now", "1900000001",
                      "--json", env.text)
            out = json.loads(run.stdout)
            assert (out["allowed"], out["reason"], out.get("detail")) == (
                ours.allowed, ours.reason, ours.detail), (amount, call)
    assert ours.detail == "amount"


def verifier_from(issuer) -> laissez.Verifier:
    return laissez.Verifier(issuer.key.public_key(), AUD, tools={REFUND: "write"})
