"""One decision for every front-end (docs/spec.md §15): the same calls, fed through the AMQP
middleware (`laissez consume`, on the real RabbitMQ), `laissez verify` and Python's
`Verifier.verify`, get the same reason and the same detail from each (a message sent twice: allowed, then replayed;
arguments refused naming the member; a budget spent until it would pass its limit).

Each case is one call: a chain (one envelope or more), its tool, body, invocation and
approvals, under one worker configuration (trust, audience, catalogue, approvers,
`require_approval destructive`, a revoked cti, a ledger). The reasons covered are every reason
the three front-ends can be given alike; the ledger's `in_flight`, `abandoned` and
`ledger_unavailable` depend on another worker or a broken ledger, and `not_attenuated` on a
child no signer signs: the Rust suites cover those.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from typing import Union

import pika
import pytest

import laissez
from conftest import AMQP_URL, laissez_bin

TOOLS = {
    "crm.read": "read",
    "crm.ticket.close": "write",
    "crm.ticket.delete": "destructive",
    "billing.pay": "write",
}


@dataclass
class Case:
    message_id: str
    links: list[bytes]
    tool: str
    body: bytes = b"{}"
    invocation: Union[bytes, str, None] = None
    approvals: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return ".".join(b64(link) for link in self.links)


def publish(channel, queue: str, call: Case) -> None:
    """Publishes `call` to `queue` with the headers a worker reads (docs/spec.md §5): the
    envelope, the tool, and the chain, invocation and approvals when it has them."""
    headers: dict[str, object] = {"laissez-envelope": call.links[-1], "laissez-tool": call.tool}
    if len(call.links) > 1:
        headers["laissez-chain"] = call.links[:-1]
    if call.invocation is not None:
        headers["laissez-invocation"] = call.invocation
    if call.approvals:
        headers["laissez-approvals"] = call.approvals
    channel.basic_publish("", queue, call.body, pika.BasicProperties(
        message_id=call.message_id, headers=headers))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def cases(queue: str, keys: dict[str, laissez.SecretKey], now: int) -> tuple[list[Case], bytes]:
    """The calls, and the cti to revoke."""
    issuer, agent, agent2 = keys["issuer"], keys["agent"], keys["agent2"]
    alice, bob = keys["alice"], keys["bob"]

    def sign(key=issuer, **kw) -> bytes:
        args = dict(agent="agent-py", aud=queue, tools=["crm.*"], classes="read+write",
                    max_uses=5)
        args.update(kw)
        return bytes(laissez.sign(key, **args))

    def invoke(key, envelope: bytes, message_id: str, tool: str, body=b"{}") -> bytes:
        return bytes(laissez.invoke(key, envelope, aud=queue, message_id=message_id, tool=tool,
                                    cls=TOOLS[tool], body=body))

    bearer = sign()
    bound = sign(classes="read+write+destructive", holder=agent.public_key(),
                 approval=("destructive", 2, [alice.public_key(), bob.public_key()]))
    destructive = sign(classes="read+write+destructive")
    # The same grant bound to alice: her invocation under it comes with `bound` (another key).
    bound_to_alice = sign(classes="read+write", holder=alice.public_key())
    once = sign(max_uses=1)
    revoked = sign()
    pay_args = {"billing.pay": {
        "amount": {"range": [1, 500]},
        "to": {"optional": {"suffix": "@acme.example"}},
        "lines": {"optional": {"each": {"object": {"sku": {"prefix": "A-"}}}, "max_items": 5}},
    }}
    paid = sign(tools=["billing.pay"], classes="write", args=pay_args)
    budgeted = sign(tools=["billing.pay"], classes="write", args=pay_args,
                    budgets=[("billing.pay", "amount", 100)])
    bad_signature = bytearray(bearer)
    bad_signature[-1] ^= 1
    root = sign(holder=agent.public_key())
    other_root = sign(holder=agent.public_key())
    child = laissez.delegate(agent, root, agent="sub", tools=["crm.read"],
                             holder=agent2.public_key(), ttl=120)
    leaf = bytes(child.leaf)
    stranger_child = laissez.delegate(agent, other_root, agent="sub", tools=["crm.read"],
                                      holder=agent2.public_key(), ttl=120)

    def approval(key, message_id: str) -> bytes:
        return bytes(laissez.approve(key, bound, aud=queue, message_id=message_id,
                                     tool="crm.ticket.delete", cls="destructive", body=b"{}"))

    calls = [
        Case("ok-bearer", [bearer], "crm.read"),
        Case("ok-bound", [bound], "crm.ticket.close",
             invocation=invoke(agent, bound, "ok-bound", "crm.ticket.close")),
        Case("no-invocation", [bound], "crm.ticket.close"),
        Case("invocation-for-another-message", [bound], "crm.ticket.close",
             invocation=invoke(agent, bound, "another", "crm.ticket.close")),
        Case("invocation-not-base64url", [bound], "crm.ticket.close", invocation="*** no ***"),
        Case("invocation-by-another-key", [bound], "crm.ticket.close",
             invocation=invoke(alice, bound_to_alice, "invocation-by-another-key",
                               "crm.ticket.close")),
        Case("one-approval-of-two", [bound], "crm.ticket.delete",
             invocation=invoke(agent, bound, "one-approval-of-two", "crm.ticket.delete"),
             approvals=[approval(alice, "one-approval-of-two")]),
        Case("two-approvals", [bound], "crm.ticket.delete",
             invocation=invoke(agent, bound, "two-approvals", "crm.ticket.delete"),
             approvals=[approval(alice, "two-approvals"), approval(bob, "two-approvals")]),
        Case("policy-requires-approval", [destructive], "crm.ticket.delete"),
        Case("wrong-audience", [sign(aud="elsewhere")], "crm.read"),
        Case("unknown-key", [sign(key=keys["stranger"])], "crm.read"),
        Case("bad-signature", [bytes(bad_signature)], "crm.read"),
        Case("malformed", [b"\xd2\x84\x00"], "crm.read"),
        Case("expired", [sign(nbf=now - 3600, ttl=60)], "crm.read"),
        Case("not-yet-valid", [sign(nbf=now + 3600, ttl=60)], "crm.read"),
        Case("tool-not-granted", [bearer], "billing.pay"),
        Case("class-not-granted", [bearer], "crm.ticket.delete"),
        Case("revoked", [revoked], "crm.read"),
        Case("chain", [root, leaf], "crm.read",
             invocation=invoke(agent2, leaf, "chain", "crm.read")),
        Case("chain-under-another-root", [root, bytes(stranger_child.leaf)], "crm.read"),
        Case("exhausted-1", [once], "crm.read"),
        Case("exhausted-2", [once], "crm.read"),
        # The same message twice: it runs once, then is a replay.
        Case("twice", [bearer], "crm.read"),
        Case("twice", [bearer], "crm.read"),
        # Arguments (docs/spec.md §16): billing.pay within 1..500, and a budget of 100 (§17).
        Case("args-ok", [paid], "billing.pay", body=b'{"amount": 40, "to": "ops@acme.example"}'),
        Case("args-over-the-cap", [paid], "billing.pay", body=b'{"amount": 900}'),
        Case("args-nested", [paid], "billing.pay",
             body=b'{"amount": 1, "lines": [{"sku": "A-1"}, {"sku": "B-2"}]}'),
        Case("args-not-json", [paid], "billing.pay", body=b"pay 40"),
        Case("args-duplicate-member", [paid], "billing.pay",
             body=b'{"amount": 1, "amount": 900}'),
        Case("budget-1", [budgeted], "billing.pay", body=b'{"amount": 60}'),
        Case("budget-2", [budgeted], "billing.pay", body=b'{"amount": 60}'),
    ]
    cti = laissez.Envelope(revoked).claims["cti"]
    return calls, cti


# What every front-end must say: (reason or None, detail or None).
EXPECTED = {
    "ok-bearer": (None, None),
    "ok-bound": (None, None),
    "no-invocation": ("invocation_required", "holder_bound"),
    "invocation-for-another-message": ("invocation_mismatch", "message_id"),
    "invocation-not-base64url": ("bad_invocation", "not_base64url"),
    "invocation-by-another-key": ("bad_invocation", "wrong_key"),
    "one-approval-of-two": ("approval_required", "1 of 2"),
    "two-approvals": (None, None),
    "policy-requires-approval": ("approval_required", "require_approval"),
    "wrong-audience": ("wrong_audience", None),
    "unknown-key": ("unknown_key", None),
    "bad-signature": ("bad_signature", None),
    "malformed": ("malformed", None),
    "expired": ("expired", None),
    "not-yet-valid": ("not_yet_valid", None),
    "tool-not-granted": ("tool_not_granted", None),
    "class-not-granted": ("class_not_granted", None),
    "revoked": ("revoked", None),
    "chain": (None, None),
    "chain-under-another-root": ("bad_delegation", "wrong_parent"),
    "args-ok": (None, None),
    "args-over-the-cap": ("arguments_not_granted", "amount"),
    "args-nested": ("arguments_not_granted", "lines[1].sku"),
    "args-not-json": ("arguments_not_granted", "body"),
    "args-duplicate-member": ("arguments_not_granted", "body"),
}
# Two calls under an envelope of one use: one runs, the other is exhausted (which one depends
# on the order the worker takes them in). The same message twice: it runs, then is replayed.
EXHAUSTED = sorted([(None, None), ("uses_exhausted", None)], key=repr)
TWICE = sorted([(None, None), ("replayed", None)], key=repr)
# Two payments of 60 under a budget of 100: one runs, the other would pass the budget.
BUDGET = sorted([(None, None), ("budget_exhausted", "billing.pay:amount")], key=repr)


def through_python(calls: list[Case], keys, queue: str, record, tmp_path) -> dict:
    ledger = laissez.Ledger(str(tmp_path / "python.redb"))
    verifier = laissez.Verifier(
        [keys["issuer"].public_key()], queue, tools=TOOLS, ledger=ledger,
        approvers=[keys["alice"].public_key(), keys["bob"].public_key()],
        require_approval="destructive", revocations=[record],
    )
    said = {}
    for call in calls:
        d = verifier.verify(call.text, tool=call.tool, message_id=call.message_id,
                            body=call.body, invocation=call.invocation,
                            approvals=call.approvals or None)
        said.setdefault(call.message_id, []).append((d.reason, d.detail))
    return said


def through_cli(calls: list[Case], queue: str, record, tmp_path) -> dict:
    (tmp_path / "revoked.txt").write_text(record.text + "\n")
    said = {}
    for call in calls:
        body = tmp_path / f"{call.message_id}.body"
        body.write_bytes(call.body)
        args = [laissez_bin(), "verify", "--json", "--trust", "trust.pub", "--aud", queue,
                "--approvers", "approvers.pub", "--require-approval", "destructive",
                "--revocations", "revoked.txt", "--ledger", "cli.redb",
                "--tool", call.tool, "--class", TOOLS[call.tool],
                "--message-id", call.message_id, "--body", str(body)]
        if call.invocation is not None:
            invocation = call.invocation
            if isinstance(invocation, bytes):
                invocation = b64(invocation)
            args += ["--invocation", invocation]
        for approval in call.approvals:
            args += ["--approval", b64(approval)]
        args.append(call.text)
        out = subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=60, check=False)
        assert out.returncode in (0, 1), out.stderr.decode()
        v = json.loads(out.stdout)
        said.setdefault(call.message_id, []).append((v["reason"], v.get("detail")))
    return said


def through_middleware(calls: list[Case], queue: str, record_cti: str, tmp_path) -> dict:
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    stream = f"{queue}.revocations"
    try:
        channel.exchange_declare(f"{queue}.dlx", "fanout", auto_delete=True)
        channel.queue_declare(f"{queue}.dlq")
        channel.queue_bind(f"{queue}.dlq", f"{queue}.dlx")
        channel.queue_declare(queue, arguments={"x-dead-letter-exchange": f"{queue}.dlx"})
        revoke = subprocess.run(
            [laissez_bin(), "revoke", "--key", "issuer.key", "--cti", record_cti,
             "--amqp", AMQP_URL, "--stream", stream],
            cwd=tmp_path, capture_output=True, timeout=60, check=False)
        assert revoke.returncode == 0, revoke.stderr.decode()
        for call in calls:
            publish(channel, queue, call)
        out = subprocess.run(
            [laissez_bin(), "consume", "--amqp", AMQP_URL, "--queue", queue, "--aud", queue,
             "--trust", "trust.pub", "--tools", "tools.toml", "--approvers", "approvers.pub",
             "--require-approval", "destructive", "--ledger", "middleware.redb",
             "--revocations-stream", stream, "--exit-when-idle", "3s", "--exec", "true"],
            cwd=tmp_path, capture_output=True, timeout=120, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("LAISSEZ_")},
        )
        stderr = out.stderr.decode()
        assert out.returncode == 0, stderr
        # The audit events on stderr carry the detail the JSON line leaves out.
        details = {}
        for line in stderr.splitlines():
            match = re.search(r"audit=(\{.*\})\s*$", line)
            if match:
                event = json.loads(match.group(1))
                if not event.get("allowed"):
                    details.setdefault(event.get("message_id"), []).append(
                        event.get("detail") or None)
        said = {}
        for line in out.stdout.decode().splitlines():
            d = json.loads(line)
            if d.get("outcome") in ("handled", "handler_failed"):
                continue  # the command's outcome, after the decision line of a message that ran
            # A message id denied twice has two audit events, in the order of the decisions.
            detail = None if d["allowed"] else details[d["message_id"]].pop(0)
            said.setdefault(d["message_id"], []).append((d["reason"], detail))
        return said
    finally:
        for q in (queue, f"{queue}.dlq", stream):
            channel.queue_delete(q)
        channel.exchange_delete(f"{queue}.dlx")
        connection.close()


def test_the_middleware_the_command_line_and_python_decide_alike(tmp_path):
    queue = f"laissez-parity-{uuid.uuid4().hex[:12]}"
    names = ("issuer", "agent", "agent2", "alice", "bob", "stranger")
    keys = {name: laissez.SecretKey.generate() for name in names}
    keys["issuer"].save(tmp_path / "issuer.key")
    (tmp_path / "trust.pub").write_text(keys["issuer"].public_key().to_pem())
    (tmp_path / "approvers.pub").write_text(
        keys["alice"].public_key().to_pem() + keys["bob"].public_key().to_pem())
    (tmp_path / "tools.toml").write_text(
        "[tools]\n" + "".join(f'"{tool}" = "{cls}"\n' for tool, cls in TOOLS.items()))
    calls, cti = cases(queue, keys, int(time.time()))
    record = laissez.revoke(keys["issuer"], cti=cti)

    said = {
        "python": through_python(calls, keys, queue, record, tmp_path),
        "command line": through_cli(calls, queue, record, tmp_path),
        "middleware": through_middleware(calls, queue, cti, tmp_path),
    }
    for front_end, decisions in said.items():
        assert set(decisions) == {c.message_id for c in calls}, front_end
        got = {k: v[0] for k, v in decisions.items() if k in EXPECTED}
        assert all(len(decisions[k]) == 1 for k in EXPECTED), front_end
        assert got == EXPECTED, front_end
        pair = sorted((v[0] for k, v in decisions.items() if k.startswith("exhausted-")), key=repr)
        assert pair == EXHAUSTED, front_end
        assert sorted(decisions["twice"], key=repr) == TWICE, front_end
        pair = sorted((v[0] for k, v in decisions.items() if k.startswith("budget-")), key=repr)
        assert pair == BUDGET, front_end
