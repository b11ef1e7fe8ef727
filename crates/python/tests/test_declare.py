"""`laissez.pika.declare_topology` on the real RabbitMQ (127.0.0.1:5672): the standard topology
of `laissez declare` (docs/spec.md §9), idempotent, where a refused message lands in the
parking queue; `laissez consume` starts on it and refuses a queue without a dead-letter
exchange."""

from __future__ import annotations

import subprocess
import uuid

import pika
import pytest

import laissez
from conftest import AMQP_URL, laissez_bin
from laissez.pika import declare_topology


@pytest.fixture
def connection():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield connection
    connection.close()


def delete(connection, queue: str) -> None:
    channel = connection.channel()
    for q in (queue, f"{queue}.dlq", f"{queue}.retry"):
        channel.queue_delete(q)
    channel.exchange_delete(f"{queue}.dlx")


def consume(tmp_path, queue: str, *extra: str) -> subprocess.CompletedProcess:
    issuer = laissez.SecretKey.generate()
    (tmp_path / "trust.pub").write_text(issuer.public_key().to_pem())
    (tmp_path / "tools.toml").write_text('[tools]\n"crm.read" = "read"\n')
    return subprocess.run(
        [laissez_bin(), "consume", "--amqp", AMQP_URL, "--queue", queue, "--aud", queue,
         "--trust", "trust.pub", "--tools", "tools.toml", "--ledger", "uses.redb",
         "--revocations-stream", f"{queue}.revocations", "--exit-when-idle", "1s", *extra],
        cwd=tmp_path, capture_output=True, timeout=120, check=False)


@pytest.mark.parametrize("quorum", [False, True])
def test_declare_topology_is_the_standard_one_and_idempotent(connection, quorum):
    queue = f"laissez-py-declare-{uuid.uuid4().hex[:12]}"
    channel = connection.channel()
    try:
        names = declare_topology(channel, queue, quorum=quorum, delivery_limit=7)
        assert names == {"queue": queue, "dead_letter_exchange": f"{queue}.dlx",
                         "dead_letter_queue": f"{queue}.dlq", "retry_queue": f"{queue}.retry"}
        # Again: nothing changes, nothing is refused.
        assert declare_topology(channel, queue, quorum=quorum, delivery_limit=7) == names
        # `laissez declare` finds everything already there, as it would have declared it.
        out = subprocess.run(
            [laissez_bin(), "declare", "--amqp", AMQP_URL, "--queue", queue]
            + (["--quorum", "--delivery-limit", "7"] if quorum else []),
            capture_output=True, timeout=120, check=False)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout.decode().count("already there") == 4, out.stdout.decode()
        # A refused message goes to the parking queue.
        channel.basic_publish("", queue, b"refused", pika.BasicProperties(message_id="m-1"))
        method = None
        for _ in range(50):
            method, _, _ = channel.basic_get(queue)
            if method is not None:
                break
            connection.sleep(0.1)
        assert method is not None
        channel.basic_reject(method.delivery_tag, requeue=False)
        parked = None
        for _ in range(50):
            parked = channel.basic_get(f"{queue}.dlq", auto_ack=True)
            if parked[0] is not None:
                break
            connection.sleep(0.1)
        assert parked[0] is not None and parked[2] == b"refused"
        # The other kind of queue under the same name is a conflict the broker names.
        with pytest.raises(pika.exceptions.ChannelClosedByBroker, match="x-queue-type"):
            declare_topology(connection.channel(), queue, quorum=not quorum, delivery_limit=7)
    finally:
        delete(connection, queue)


def test_declare_topology_refuses_bad_arguments(connection):
    channel = connection.channel()
    with pytest.raises(ValueError, match="the queue name must not be empty"):
        declare_topology(channel, "")
    for limit in (0, -1, 2**31, 2**70, True, 1.5, "7"):
        with pytest.raises(ValueError, match=r"delivery_limit is an integer from 1 to 2\*\*31-1"):
            declare_topology(channel, "q", quorum=True, delivery_limit=limit)


def test_consume_starts_on_the_declared_topology_and_refuses_a_queue_without_one(
        connection, tmp_path):
    queue = f"laissez-py-dlx-{uuid.uuid4().hex[:12]}"
    channel = connection.channel()
    try:
        channel.queue_declare(queue, durable=True)
        refused = consume(tmp_path, queue)
        stderr = refused.stderr.decode()
        assert refused.returncode == 3, stderr
        assert "laissez declare" in stderr and "--no-dead-letter-check" in stderr
        assert "panicked" not in stderr
        # Dead letters routed another way: the operator says so.
        assert consume(tmp_path, queue, "--no-dead-letter-check").returncode == 0
        channel.queue_delete(queue)
        declare_topology(channel, queue)
        started = consume(tmp_path, queue)
        assert started.returncode == 0, started.stderr.decode()
    finally:
        delete(connection, queue)
        connection.channel().queue_delete(f"{queue}.revocations")
