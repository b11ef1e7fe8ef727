"""End to end on the real RabbitMQ (127.0.0.1:5672): a Python agent publishes with
`laissez.pika.publish_call`, `laissez consume` runs the calls, and the holder-bound envelope
copied onto a new message is refused (docs/spec.md §5, §6)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pika
import pytest

import laissez
from conftest import AMQP_URL, laissez_bin
from laissez.pika import publish_call


@pytest.fixture
def channel():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield connection.channel()
    connection.close()


def declare(channel, queue: str) -> None:
    """The work queue dead-lettering to `<queue>.dlx` (fanout) and `<queue>.dlq`, and a spy
    queue that sees every message published through the fanout `<queue>.in`."""
    channel.exchange_declare(f"{queue}.dlx", "fanout", auto_delete=True)
    channel.queue_declare(f"{queue}.dlq", auto_delete=False)
    channel.queue_bind(f"{queue}.dlq", f"{queue}.dlx")
    channel.queue_declare(queue, arguments={"x-dead-letter-exchange": f"{queue}.dlx"})
    channel.exchange_declare(f"{queue}.in", "fanout", auto_delete=True)
    channel.queue_declare(f"{queue}.spy")
    for q in (queue, f"{queue}.spy"):
        channel.queue_bind(q, f"{queue}.in")


def test_a_python_agent_publishes_and_laissez_consume_runs_only_its_own_calls(tmp_path, channel):
    queue = f"laissez-py-test-{uuid.uuid4().hex[:12]}"
    declare(channel, queue)
    try:
        issuer, agent = laissez.SecretKey.generate(), laissez.SecretKey.generate()
        (tmp_path / "trust.pub").write_text(issuer.public_key().to_pem())
        (tmp_path / "tools.toml").write_text('[tools]\n"crm.read" = "read"\n"crm.ticket.close" = "write"\n')
        envelope = laissez.sign(
            issuer, agent="agent-py", aud=queue, tools=["crm.*"], classes="read+write",
            max_uses=5, holder=agent.public_key(),
        )
        # Two calls of the agent, through the fanout so the spy sees what an onlooker would.
        first = publish_call(channel, queue, envelope, "crm.read", b"ticket 1", agent_key=agent,
                             message_id="m-1", cls="read", exchange=f"{queue}.in")
        second = publish_call(channel, queue, envelope.text, "crm.ticket.close", b"ticket 2",
                              agent_key=agent, cls="write", exchange=f"{queue}.in")
        assert first == "m-1" and len(second) == 32
        # An onlooker copies the first message's headers onto new messages.
        _, props, body = channel.basic_get(f"{queue}.spy", auto_ack=True)
        headers = props.headers
        assert headers["laissez-envelope"] == bytes(envelope)
        assert (headers["laissez-tool"], headers["laissez-class"]) == ("crm.read", "read")
        assert isinstance(headers["laissez-invocation"], bytes) and body == b"ticket 1"
        copy = dict(headers)
        channel.basic_publish("", queue, b"ticket 1", pika.BasicProperties(
            message_id="m-copy-invocation", headers=copy))
        del copy["laissez-invocation"]
        channel.basic_publish("", queue, b"ticket 1", pika.BasicProperties(
            message_id="m-copy", headers=copy))
        # A holder-bound envelope cannot be published without the agent's key or the class.
        with pytest.raises(ValueError):
            publish_call(channel, queue, envelope, "crm.read", b"x", message_id="m-nokey", cls="read")
        with pytest.raises(ValueError):
            publish_call(channel, queue, envelope, "crm.read", b"x", agent_key=agent)
        with pytest.raises(laissez.SignError):
            publish_call(channel, queue, envelope, "billing.pay", b"x", agent_key=agent, cls="read")

        script = 'cat > "$LAISSEZ_MESSAGE_ID.body"; echo "ran $LAISSEZ_MESSAGE_ID use=$LAISSEZ_USE" >&2'
        out = subprocess.run(
            [laissez_bin(), "consume", "--amqp", AMQP_URL, "--queue", queue, "--aud", queue,
             "--trust", "trust.pub", "--tools", "tools.toml", "--ledger", "uses.redb",
             "--exit-when-idle", "2s", "--exec", "sh", "-c", script],
            cwd=tmp_path, capture_output=True, timeout=120, check=False,
            env={k: v for k, v in os.environ.items() if k != "LAISSEZ_REDIS_URL"},
        )
        stderr = out.stderr.decode()
        assert out.returncode == 0, stderr
        decisions = sorted(
            (d["message_id"], d["allowed"], d["reason"] or "")
            for d in map(json.loads, out.stdout.decode().splitlines())
            # A command's outcome line follows the decision line of each message that ran.
            if d.get("outcome") not in ("handled", "handler_failed")
        )
        assert decisions == sorted([
            ("m-1", True, ""),
            (second, True, ""),
            ("m-copy", False, "invocation_required"),
            ("m-copy-invocation", False, "invocation_mismatch"),
        ]), out.stdout.decode()
        assert (tmp_path / "m-1.body").read_bytes() == b"ticket 1"
        assert (tmp_path / f"{second}.body").read_bytes() == b"ticket 2"
        assert stderr.count("ran ") == 2, stderr
        dead = []
        while True:
            method, props, _ = channel.basic_get(f"{queue}.dlq", auto_ack=True)
            if method is None:
                break
            dead.append(props.message_id)
        assert sorted(dead) == ["m-copy", "m-copy-invocation"]
    finally:
        for q in (queue, f"{queue}.spy", f"{queue}.dlq"):
            channel.queue_delete(q)
        for x in (f"{queue}.dlx", f"{queue}.in"):
            channel.exchange_delete(x)


def test_publish_call_raises_when_no_queue_takes_the_message(channel):
    issuer = laissez.SecretKey.generate()
    envelope = laissez.sign(issuer, agent="a", aud="nowhere", tools=["crm.*"])
    with pytest.raises(pika.exceptions.UnroutableError):
        publish_call(channel, f"laissez-py-absent-{uuid.uuid4().hex}", envelope, "crm.read", b"x")


def test_publish_call_sends_approvals_that_laissez_consume_counts(tmp_path, channel):
    queue = f"laissez-py-apv-{uuid.uuid4().hex[:12]}"
    declare(channel, queue)
    try:
        issuer, agent = laissez.SecretKey.generate(), laissez.SecretKey.generate()
        alice, bob = laissez.SecretKey.generate(), laissez.SecretKey.generate()
        (tmp_path / "trust.pub").write_text(issuer.public_key().to_pem())
        (tmp_path / "approvers.pub").write_text(alice.public_key().to_pem() + bob.public_key().to_pem())
        (tmp_path / "tools.toml").write_text('[tools]\n"crm.ticket.delete" = "destructive"\n')
        envelope = laissez.sign(
            issuer, agent="agent-py", aud=queue, tools=["crm.*"], classes="destructive",
            max_uses=3, holder=agent.public_key(),
            approval=("destructive", 2, [alice.public_key(), bob.public_key()]),
        )
        approvals = [
            laissez.approve(k, envelope, aud=queue, message_id="m-ok", tool="crm.ticket.delete",
                            cls="destructive", body=b"ticket 9")
            for k in (alice, bob)
        ]
        publish_call(channel, queue, envelope, "crm.ticket.delete", b"ticket 9", agent_key=agent,
                     message_id="m-ok", cls="destructive", approvals=[approvals[0], approvals[1].text])
        publish_call(channel, queue, envelope, "crm.ticket.delete", b"ticket 9", agent_key=agent,
                     message_id="m-short", cls="destructive", approvals=[])
        with pytest.raises(ValueError):
            publish_call(channel, queue, envelope, "crm.ticket.delete", b"x", agent_key=agent,
                         cls="destructive", approvals=[approvals[0]] * 17)
        with pytest.raises(TypeError):
            publish_call(channel, queue, envelope, "crm.ticket.delete", b"x", agent_key=agent,
                         cls="destructive", approvals=approvals[0])
        out = subprocess.run(
            [laissez_bin(), "consume", "--amqp", AMQP_URL, "--queue", queue, "--aud", queue,
             "--trust", "trust.pub", "--tools", "tools.toml", "--approvers", "approvers.pub",
             "--ledger", "uses.redb", "--exit-when-idle", "2s",
             "--exec", "sh", "-c", 'echo "by=$LAISSEZ_APPROVED_BY" >&2'],
            cwd=tmp_path, capture_output=True, timeout=120, check=False,
            env={k: v for k, v in os.environ.items() if k != "LAISSEZ_REDIS_URL"},
        )
        stderr = out.stderr.decode()
        assert out.returncode == 0, stderr
        decisions = sorted(
            (d["message_id"], d["allowed"], d["reason"] or "")
            for d in map(json.loads, out.stdout.decode().splitlines())
            # A command's outcome line follows the decision line of each message that ran.
            if d.get("outcome") not in ("handled", "handler_failed")
        )
        assert decisions == [("m-ok", True, ""), ("m-short", False, "approval_required")], decisions
        assert alice.kid in stderr and bob.kid in stderr
    finally:
        for q in (queue, f"{queue}.spy", f"{queue}.dlq"):
            channel.queue_delete(q)
        for x in (f"{queue}.dlx", f"{queue}.in"):
            channel.exchange_delete(x)


def test_publish_call_sends_a_chain_as_leaf_and_ancestors(channel):
    queue = f"laissez-py-chain-{uuid.uuid4().hex[:12]}"
    channel.queue_declare(queue, auto_delete=True)
    issuer, a, b = (laissez.SecretKey.generate() for _ in range(3))
    root = laissez.sign(issuer, agent="agent-a", aud=queue, tools=["crm.*"], max_uses=3,
                        holder=a.public_key())
    chain = laissez.delegate(a, root, agent="agent-b", tools="crm.read", holder=b.public_key())
    for n, form in enumerate((chain, chain.text)):
        publish_call(channel, queue, form, "crm.read", b"ticket", agent_key=b,
                     message_id=f"m-{n}", cls="read")
        _, props, body = channel.basic_get(queue, auto_ack=True)
        headers = props.headers
        assert headers["laissez-envelope"] == bytes(chain.leaf)
        assert headers["laissez-chain"] == [bytes(root)]
        # What a worker reads from the headers verifies: the invocation is over the leaf.
        decision = laissez.Verifier(issuer.public_key(), queue).verify(
            headers["laissez-chain"] + [headers["laissez-envelope"]], tool="crm.read", cls="read",
            message_id=props.message_id, body=body, invocation=headers["laissez-invocation"])
        assert decision.allowed, decision
    # A plain envelope has no laissez-chain header.
    publish_call(channel, queue, root, "crm.read", b"t", agent_key=a, message_id="m-root", cls="read")
    _, props, _ = channel.basic_get(queue, auto_ack=True)
    assert "laissez-chain" not in props.headers
