"""Delegation (docs/spec.md §13) from Python: a chain made with `delegate` verifies in
Python (as text, a Chain or a list of bytes) and in pycose link by link; widening, a fifth
envelope and other bad input are refused with clear exceptions; a delegated use spends every
ancestor's uses, also on Redis, where the lease must keep the chain's root."""

from __future__ import annotations

import hashlib
import json
import uuid

import cbor2
import pytest

import laissez
from conftest import REDIS_URL
from test_pycose import pycose_verifies

AUD = "billing-queue"
BODY = b"ticket 7"


@pytest.fixture
def keys():
    return {n: laissez.SecretKey.generate() for n in ("issuer", "a", "b", "c", "d", "e")}


def root(keys, **kw) -> laissez.Envelope:
    kw.setdefault("max_uses", 5)
    return laissez.sign(keys["issuer"], agent="agent-a", aud=AUD, tools=["crm.*"],
                        classes="read+write", holder=keys["a"].public_key(),
                        session="task-1", **kw)


def to_b(keys, parent, **kw) -> laissez.Chain:
    kw.setdefault("tools", ["crm.read"])
    kw.setdefault("max_uses", 2)
    return laissez.delegate(keys["a"], parent, agent="agent-b", holder=keys["b"].public_key(), **kw)


def call(keys, chain, message_id="m-1", holder="b", **kw):
    inv = laissez.invoke(keys[holder], chain.leaf, aud=AUD, message_id=message_id,
                         tool="crm.read", cls="read", body=BODY)
    return dict(tool="crm.read", cls="read", message_id=message_id, body=BODY, invocation=inv, **kw)


def test_a_python_chain_verifies_in_python(keys):
    parent = root(keys)
    chain = to_b(keys, parent)
    assert len(chain) == 2 and chain.links[0] == parent and chain.ancestors == [parent]
    assert [c["sub"] for c in chain.claims] == ["agent-a", "agent-b"]
    # The child keeps the parent's session and names it by its digest.
    assert chain.claims[1]["grant"]["sid"] == "task-1" and chain.leaf.kid == keys["a"].kid
    v = laissez.Verifier(keys["issuer"].public_key(), AUD)
    for form in (chain, chain.text, [bytes(link) for link in chain.links], chain.links):
        decision = v.verify(form, **call(keys, chain))
        assert decision.allowed, (form, decision)
        assert [c["sub"] for c in decision.chain] == ["agent-a", "agent-b"]
        assert decision.claims["sub"] == "agent-b" and decision.kid == keys["issuer"].kid
        assert decision.ancestors == [(parent.claims["cti"], 5, parent.claims["exp"] + 5)]
    assert laissez.Chain(chain.text) == chain and str(chain) == chain.text
    # The leaf alone proves nothing; the parent's holder cannot use the child; the child
    # grants only reads.
    assert v.verify(chain.leaf, **call(keys, chain)).reason == "unknown_key"
    trusting_a = laissez.Verifier([keys["issuer"].public_key(), keys["a"].public_key()], AUD)
    alone = trusting_a.verify(chain.leaf, **call(keys, chain))
    assert (alone.reason, alone.detail) == ("bad_delegation", "root_has_parent")
    with pytest.raises(laissez.SignError) as e:  # the parent's holder cannot invoke the child
        call(keys, chain, holder="a")
    assert e.value.reason == "not_the_holder"
    copied = v.verify(chain, **{**call(keys, chain), "message_id": "m-2"})
    assert (copied.reason, copied.detail) == ("invocation_mismatch", "message_id")
    write = v.verify(chain, tool="crm.read", cls="write")
    assert write.reason == "class_not_granted"
    # A third link, from b to c.
    three = laissez.delegate(keys["b"], chain, agent="agent-c", tools="crm.read",
                             holder=keys["c"].public_key())
    decision = v.verify(three.text, **call(keys, three, holder="c"))
    assert decision.allowed and [c["sub"] for c in decision.chain] == ["agent-a", "agent-b", "agent-c"]


def test_pycose_verifies_each_link(keys):
    parent = root(keys)
    chain = to_b(keys, parent)
    pycose_verifies(bytes(chain.links[0]), keys["issuer"].public_key(), b"laissez/v1")
    child = pycose_verifies(bytes(chain.leaf), keys["a"].public_key(), b"laissez/v1")
    claims = cbor2.loads(child.payload)
    assert claims[2] == "agent-b"
    assert claims[8] == {1: {1: 1, -1: 6, -2: bytes(keys["b"].public_key())}}
    # The child names its parent by the SHA-256 of the parent's bytes.
    assert hashlib.sha256(bytes(parent)).digest() in [
        v for v in claims.values() if isinstance(v, bytes)]


def test_the_cli_reads_a_python_chain_when_it_reads_chains(keys, tmp_path, cli):
    (tmp_path / "trust.pub").write_text(keys["issuer"].public_key().to_pem())
    chain = to_b(keys, root(keys))
    inv = laissez.invoke(keys["b"], chain.leaf, aud=AUD, message_id="m-1", tool="crm.read",
                         cls="read", body=BODY)
    (tmp_path / "body").write_bytes(BODY)
    result = cli("verify", "--trust", "trust.pub", "--aud", AUD, "--tool", "crm.read", "--class",
                 "read", "--message-id", "m-1", "--body", "body", "--invocation", inv.text,
                 "--json", chain.text)
    assert result.returncode == 0, (result.stdout, result.stderr)
    verdict = json.loads(result.stdout)
    assert verdict["allowed"] is True, (verdict, result.stderr)
    # The CLI read the whole chain, root first, not only one envelope of it.
    assert [c["sub"] for c in verdict["chain"]] == [c["sub"] for c in chain.claims], verdict


def test_widening_and_long_chains_are_refused(keys):
    parent = root(keys)
    for kw, field in [
        (dict(max_uses=6), "max_uses"),
        (dict(tools=["crm.*"], classes="read+write+destructive"), "tools"),
        (dict(aud="another-queue"), "aud"),
        (dict(session="task-2"), "sid"),
        # The root names no principal: a delegate cannot claim one (issue 23, attack 6).
        (dict(obo="ceo@acme.example"), "obo"),
    ]:
        with pytest.raises(laissez.SignError) as e:
            to_b(keys, parent, **kw)
        assert (e.value.reason, e.value.field) == ("not_attenuated", field), kw
    # As `laissez delegate`, nbf and exp are clamped into the parent's, never widened.
    long = to_b(keys, parent, ttl="2h")
    assert long.claims[1]["exp"] == parent.claims["exp"]
    later = root(keys, nbf=parent.claims["nbf"] + 60)
    assert to_b(keys, later).claims[1]["nbf"] == later.claims["nbf"]
    gone = root(keys, nbf=1_000_000, ttl=60)
    with pytest.raises(laissez.SignError) as e:
        to_b(keys, gone)
    assert e.value.reason == "expired"
    with pytest.raises(laissez.SignError) as e:
        laissez.delegate(keys["b"], parent, agent="x", tools="crm.read", holder=keys["c"].public_key())
    assert e.value.reason == "not_the_holder"
    bearer = laissez.sign(keys["issuer"], agent="a", aud=AUD, tools="crm.*")
    with pytest.raises(laissez.SignError) as e:
        laissez.delegate(keys["a"], bearer, agent="x", tools="crm.read", holder=keys["b"].public_key())
    assert e.value.reason == "parent_not_holder_bound"
    # Four envelopes is the most: a fifth is refused by the signer, by Chain and by a verifier.
    chain = to_b(keys, parent)
    for holder, nxt in (("b", "c"), ("c", "d")):
        chain = laissez.delegate(keys[holder], chain, agent=f"agent-{nxt}", tools="crm.read",
                                 holder=keys[nxt].public_key())
    assert len(chain) == 4
    assert laissez.Verifier(keys["issuer"].public_key(), AUD).verify(
        chain, **call(keys, chain, holder="d")).allowed
    with pytest.raises(laissez.SignError) as e:
        laissez.delegate(keys["d"], chain, agent="agent-e", tools="crm.read",
                         holder=keys["e"].public_key())
    assert e.value.reason == "chain_too_long"
    five = [bytes(link) for link in chain.links] + [bytes(chain.leaf)]
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Chain(five)
    assert e.value.reason == "bad_delegation"
    decision = laissez.Verifier(keys["issuer"].public_key(), AUD).verify(five)
    assert (decision.reason, decision.detail) == ("bad_delegation", "too_long")


def test_bad_chain_input_is_an_exception(keys):
    v = laissez.Verifier(keys["issuer"].public_key(), AUD)
    assert v.verify("abc.!!!").reason == "malformed"
    assert v.verify([b"\xd2"]).reason == "malformed"
    assert v.verify([]).reason == "malformed"
    with pytest.raises(ValueError):
        v.verify([b"x"] * 1000)
    with pytest.raises(TypeError):
        v.verify([42])
    with pytest.raises(laissez.LaissezError) as e:
        laissez.Chain("abc.def")
    assert e.value.reason == "malformed"
    with pytest.raises(TypeError):
        laissez.delegate(keys["a"], root(keys), agent="b", tools=42, holder=keys["b"].public_key())
    with pytest.raises(TypeError):
        laissez.delegate(keys["a"], root(keys), agent="b", tools="crm.read", holder="not a key")


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_delegated_use_spends_every_ancestor(keys, backend):
    ledger = laissez.Ledger.memory() if backend == "memory" else laissez.Ledger(REDIS_URL)
    # The root allows 3 uses, each child 2: two children of one root run 3 calls in all.
    parent = root(keys, max_uses=3)
    first, second = to_b(keys, parent), to_b(keys, parent)
    v = laissez.Verifier(keys["issuer"].public_key(), AUD, ledger=ledger)
    run = uuid.uuid4().hex
    verdicts = [v.verify(chain, **call(keys, chain, message_id=f"{run}-{n}")).reason
                for n, chain in enumerate([first, first, second, second])]
    assert verdicts == [None, None, None, "uses_exhausted"]
    # By hand, as a worker that holds the message while it runs: the lease keeps the root.
    third = to_b(keys, root(keys, max_uses=3))
    decision = v.verify(third, tool="crm.read", cls="read")  # no call: nothing spent
    assert decision.reason == "invocation_required" and len(decision.ancestors) == 1
    leaf = third.claims[1]
    begin = dict(max_uses=leaf["grant"]["max_uses"], expires_at=leaf["exp"] + 5, tool="crm.read",
                 cls="read", ancestors=decision.ancestors)
    outcome = ledger.begin(leaf["cti"], f"{run}-x", **begin)
    assert outcome.granted and outcome.lease.root == third.claims[0]["cti"]
    if backend == "redis":
        # The token's bytes alone do not find a delegated use where Redis keeps it.
        with pytest.raises(laissez.LedgerError) as e:
            ledger.complete(leaf["cti"], f"{run}-x", bytes(outcome.lease))
        assert e.value.reason == "lease_not_held"
    ledger.release(leaf["cti"], f"{run}-x", outcome.lease)
    again = ledger.begin(leaf["cti"], f"{run}-x", **begin)
    assert again.granted and again.taken_over
    ledger.complete(leaf["cti"], f"{run}-x", again.lease)
    assert ledger.begin(leaf["cti"], f"{run}-x", **begin).code == "replayed"
    with pytest.raises(ValueError):
        ledger.begin(leaf["cti"], "m", **{**begin, "ancestors": decision.ancestors * 4})
    with pytest.raises(TypeError):
        ledger.begin(leaf["cti"], "m", **{**begin, "ancestors": [("x",)]})
