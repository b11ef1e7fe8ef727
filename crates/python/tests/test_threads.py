"""Thread safety: 8 Python threads verifying at once give the verdicts one thread gives."""

from __future__ import annotations

import threading
import time

import laissez

AUD = "billing-queue"


def test_eight_threads_give_the_same_verdicts():
    issuer, agent, stranger = (laissez.SecretKey.generate() for _ in range(3))
    bearer = laissez.sign(issuer, agent="a", aud=AUD, tools=["crm.read", "crm.ticket.*=write"])
    bound = laissez.sign(issuer, agent="b", aud=AUD, tools=["crm.*"], holder=agent.public_key())
    tampered = bytearray(bytes(bearer))
    tampered[-1] ^= 1
    inv = laissez.invoke(agent, bound, aud=AUD, message_id="m-1", tool="crm.read", cls="read",
                         body=b"x")
    now = int(time.time())
    cases = [
        (bearer, dict(tool="crm.read", cls="read")),
        (bearer, dict(tool="crm.ticket.close", cls="write")),
        (bearer, dict(tool="crm.ticket.close", cls="read")),
        (bearer, dict(tool="billing.pay", cls="read")),
        (bearer, dict(now=now + 7200)),
        (bytes(tampered), {}),
        (laissez.sign(stranger, agent="c", aud=AUD, tools=["*"]), {}),
        (bound, dict(tool="crm.read", cls="read", message_id="m-1", body=b"x", invocation=inv)),
        (bound, dict(tool="crm.read", cls="read", message_id="m-2", body=b"x", invocation=inv)),
        (bound, dict(tool="crm.read", cls="read", message_id="m-1", body=b"x")),
        (b"not an envelope", {}),
    ]
    verifier = laissez.Verifier(issuer.public_key(), AUD)
    expected = [verifier.verify(env, **kw) for env, kw in cases]
    reasons = {d.reason for d in expected}
    assert None in reasons and len(reasons) >= 7  # allowed and many different denials

    results: list = [None] * 8
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        got = []
        for _ in range(200):
            got.append([verifier.verify(env, **kw) for env, kw in cases])
        results[i] = got

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        assert got is not None and len(got) == 200
        for round_ in got:
            assert round_ == expected


def test_records_added_while_threads_verify_chains_and_approvals():
    """A shared RevocationSet takes records while 8 threads verify delegated calls with
    approvals: each verdict is allowed or revoked, never anything else, and once the record
    is held every thread sees it."""
    issuer, a, b, alice = (laissez.SecretKey.generate() for _ in range(4))
    root = laissez.sign(issuer, agent="a", aud=AUD, tools=["crm.*"], classes="read+destructive",
                        max_uses=5, holder=a.public_key(), session="task-9",
                        approval=("destructive", 1, [alice.public_key()]))
    # The signer checks the leaf's own rule: the delegator restates it in the child.
    chain = laissez.delegate(a, root, agent="b", tools="crm.*", classes="read+destructive",
                             holder=b.public_key(),
                             approval=("destructive", 1, [alice.public_key()]))
    call = dict(aud=AUD, message_id="m-1", tool="crm.delete", cls="destructive", body=b"x")
    inv = laissez.invoke(b, chain.leaf, **call)
    approval = laissez.approve(alice, chain, **call)
    held = laissez.RevocationSet(issuer.public_key())
    verifier = laissez.Verifier(issuer.public_key(), AUD, approvers=[alice.public_key()],
                                revocations=held)
    request = dict(tool="crm.delete", cls="destructive", message_id="m-1", body=b"x",
                   invocation=inv, approvals=[approval])
    assert verifier.verify(chain, **request).approved_by == [alice.kid]
    seen: list = [None] * 8
    barrier = threading.Barrier(9)

    def work(i: int) -> None:
        barrier.wait()
        reasons = set()
        for _ in range(300):
            reasons.add(verifier.verify(chain.text, **request).reason)
        seen[i] = reasons

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    barrier.wait()
    held.add(laissez.revoke(issuer, session="task-9"))
    for t in threads:
        t.join()
    assert all(s is not None and s <= {None, "revoked"} for s in seen), seen
    assert verifier.verify(chain, **request).reason == "revoked"
