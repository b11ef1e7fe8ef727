"""The Python worker side (`laissez.Worker` with `laissez.pika.consume` and
`laissez.aio_pika.consume`) on the real RabbitMQ, under each helper: it gives `laissez consume`'s
decision lines for the same calls, byte for byte (docs/spec.md §9, §15); a use held by a killed
worker is taken over by the redelivery, or `abandoned` for the destructive class; a call parked
for approval runs once `laissez approve` has approved it; and a session revoked with
`publish_revocation` runs no more (§14)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pika
import pytest

import laissez
from conftest import AMQP_URL, REDIS_URL, laissez_bin
from laissez.pika import declare_topology, publish_call, publish_revocation
from test_parity import BUDGET, EXHAUSTED, EXPECTED, TOOLS, TWICE, cases, publish
from worker_run import HELPERS, declare_with, publish_revocation_with, run_worker

HERE = Path(__file__).resolve().parent


@pytest.fixture
def channel():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    yield connection.channel()
    connection.close()


@pytest.fixture
def topology(channel):
    """Declares queues with `declare_topology` (names made unique per test) and deletes them,
    with the revocation streams the test names, afterwards."""
    made: list[str] = []

    def declare(queue: str) -> dict[str, str]:
        names = declare_topology(channel, queue)
        made.extend([names["queue"], names["dead_letter_queue"], names["retry_queue"]])
        return names

    declare.made = made
    yield declare
    for queue in made:
        channel.queue_delete(queue)
    for queue in made:
        if queue.endswith(".dlq"):
            channel.exchange_delete(queue[:-4] + ".dlx")


def key_dir(tmp_path: Path, names=("issuer", "agent", "agent2", "alice", "bob", "stranger")):
    keys = {name: laissez.SecretKey.generate() for name in names}
    keys["issuer"].save(tmp_path / "issuer.key")
    if "alice" in keys:
        keys["alice"].save(tmp_path / "alice.key")
    (tmp_path / "trust.pub").write_text(keys["issuer"].public_key().to_pem())
    (tmp_path / "approvers.pub").write_text(
        "".join(keys[n].public_key().to_pem() for n in ("alice", "bob") if n in keys))
    (tmp_path / "tools.toml").write_text(
        "[tools]\n" + "".join(f'"{tool}" = "{cls}"\n' for tool, cls in TOOLS.items()))
    return keys


def normalised(lines: list[str]) -> collections.Counter:
    """The decision lines as a multiset, the message ids of a pair whose order decides which
    one runs (two calls under one use, two payments under one budget) replaced by the pair's
    name."""
    out = collections.Counter()
    for line in lines:
        d = json.loads(line)
        for pair in ("exhausted-", "budget-"):
            if (d["message_id"] or "").startswith(pair):
                d["message_id"] = pair
        out[json.dumps(d, sort_keys=True)] += 1
    return out


@pytest.mark.parametrize("helper", HELPERS)
def test_the_python_worker_prints_laissez_consumes_lines_for_the_same_calls(
        helper, tmp_path, channel, topology):
    audience = f"laissez-pyworker-{uuid.uuid4().hex[:12]}"
    stream = f"{audience}.revocations"
    keys = key_dir(tmp_path)
    calls, cti = cases(audience, keys, int(time.time()))
    record = laissez.revoke(keys["issuer"], cti=cti)
    py_queue = topology(f"{audience}.py")["queue"]
    cli_queue = topology(f"{audience}.cli")["queue"]
    try:
        publish_revocation(channel, record, stream)
        for call in calls:
            publish(channel, py_queue, call)
            publish(channel, cli_queue, call)
        out = subprocess.run(
            [laissez_bin(), "consume", "--amqp", AMQP_URL, "--queue", cli_queue, "--aud",
             audience, "--trust", "trust.pub", "--tools", "tools.toml", "--approvers",
             "approvers.pub", "--require-approval", "destructive", "--ledger", "cli.redb",
             "--revocations-stream", stream, "--exit-when-idle", "3s", "--exec", "true"],
            cwd=tmp_path, capture_output=True, timeout=120, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("LAISSEZ_")},
        )
        assert out.returncode == 0, out.stderr.decode()
        cli_lines = [line for line in out.stdout.decode().splitlines()
                     if json.loads(line).get("outcome") not in ("handled", "handler_failed")]

        worker = laissez.Worker(
            [keys["issuer"].public_key()], audience, TOOLS,
            laissez.Ledger(str(tmp_path / "python.redb")), queue=py_queue,
            approvers=[keys["alice"].public_key(), keys["bob"].public_key()],
            require_approval="destructive", follow_revocations=AMQP_URL,
            revocation_stream=stream,
        )
        ran: list[str] = []
        admissions = run_worker(helper, py_queue, worker, lambda call: ran.append(call.message_id))
    finally:
        channel.queue_delete(stream)

    py_lines = [a.decision_line for a in admissions]
    assert len(py_lines) == len(calls) == len(cli_lines)
    assert normalised(py_lines) == normalised(cli_lines)
    # And each says what the contract says, with the audit event's detail.
    said: dict[str, list] = {}
    for a in admissions:
        said.setdefault(a.decision["message_id"], []).append(
            (a.decision["reason"], a.decision["detail"]))
    assert {k: v[0] for k, v in said.items() if k in EXPECTED} == EXPECTED
    assert sorted(said["twice"], key=repr) == TWICE
    pair = sorted((v[0] for k, v in said.items() if k.startswith("exhausted-")), key=repr)
    assert pair == EXHAUSTED
    pair = sorted((v[0] for k, v in said.items() if k.startswith("budget-")), key=repr)
    assert pair == BUDGET
    parked = [a.decision for a in admissions if a.decision.get("outcome") == "parked"]
    assert {d["message_id"] for d in parked} == {"one-approval-of-two", "policy-requires-approval"}
    # Only allowed calls reached the handler, each once.
    assert sorted(ran) == sorted(a.message_id for a in admissions if a.action == "run")
    assert worker.stats["handled"] == len(ran) and worker.stats["parked"] == 2
    # The denied and the parked are in the dead-letter queue, as laissez consume left its own.
    for queue in (py_queue, cli_queue):
        dlq = channel.queue_declare(f"{queue}.dlq", passive=True).method.message_count
        assert dlq == len(calls) - len(ran), queue


WORKER_SCRIPT = """
import sys, time
import laissez
from worker_run import run_worker

helper, queue, audience, trust, ledger, marker = sys.argv[1:]
worker = laissez.Worker(trust, audience, {"crm.ticket.close": "write",
                        "crm.ticket.delete": "destructive"}, laissez.Ledger(ledger), lease=2)

def handler(call):
    with open(marker, "w") as f:
        f.write(str(call.use))
    time.sleep(600)  # killed while running

run_worker(helper, queue, worker, handler, idle=600)
"""


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("tool,cls", [("crm.ticket.close", "write"),
                                      ("crm.ticket.delete", "destructive")])
def test_a_call_whose_worker_was_killed_runs_again_under_its_use_unless_destructive(
        helper, tool, cls, tmp_path, channel, topology):
    queue = topology(f"laissez-pyworker-kill-{uuid.uuid4().hex[:12]}")["queue"]
    issuer = laissez.SecretKey.generate()
    (tmp_path / "trust.pub").write_text(issuer.public_key().to_pem())
    envelope = laissez.sign(issuer, agent="agent-py", aud=queue, tools=["crm.*"],
                            classes="read+write+destructive", max_uses=5)
    publish_call(channel, queue, envelope, tool, b"{}", message_id="m-1")
    marker = tmp_path / "running"
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    ledger = tmp_path / "uses.redb"
    child = subprocess.Popen(
        [sys.executable, str(script), helper, queue, queue, str(tmp_path / "trust.pub"),
         str(ledger), str(marker)],
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    try:
        deadline = time.time() + 60
        while not marker.exists() and time.time() < deadline:
            assert child.poll() is None, "the worker exited"
            time.sleep(0.05)
        assert marker.read_text() == "1"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    worker = laissez.Worker([issuer.public_key()], queue, {tool: cls},
                            laissez.Ledger(str(ledger)), lease=2)
    handled = []
    admissions = run_worker(helper, queue, worker, handled.append, idle=4)
    assert len(admissions) == 1
    decision = admissions[0].decision
    if cls == "destructive":
        # At most once: a person decides (docs/spec.md §9, "abandoned").
        assert (decision["allowed"], decision["reason"]) == (False, "abandoned")
        assert handled == []
        assert channel.queue_declare(f"{queue}.dlq", passive=True).method.message_count == 1
    else:
        # The same use, taken over once the killed worker's lease lapsed.
        assert (decision["allowed"], decision["use"]) == (True, 1)
        assert [(c.message_id, c.use, c.taken_over, c.redelivered) for c in handled] == [
            ("m-1", 1, True, True)]
        # It waited for the lease: requeued at least once while the lease was held.
        assert worker.stats["requeued"] >= 1


@pytest.mark.parametrize("helper", HELPERS)
def test_a_parked_call_runs_once_approved_with_laissez_approve(
        helper, tmp_path, channel, topology):
    queue = topology(f"laissez-pyworker-approve-{uuid.uuid4().hex[:12]}")["queue"]
    stream = f"{queue}.revocations"
    keys = key_dir(tmp_path, names=("issuer", "alice"))
    envelope = laissez.sign(keys["issuer"], agent="agent-py", aud=queue, tools=["crm.*"],
                            classes="read+write+destructive", max_uses=5,
                            approval=("destructive", 1, [keys["alice"].public_key()]))
    publish_call(channel, queue, envelope, "crm.ticket.delete", b'{"ticket": 7}',
                 message_id="delete-7")
    ledger = laissez.Ledger(REDIS_URL)
    worker = laissez.Worker([keys["issuer"].public_key()], queue, TOOLS, ledger,
                            approvers=[keys["alice"].public_key()],
                            follow_revocations=AMQP_URL, revocation_stream=stream)
    try:
        [parked] = run_worker(helper, queue, worker)
        assert parked.action == "dead_letter"
        assert (parked.decision["reason"], parked.decision["detail"],
                parked.decision["outcome"]) == ("approval_required", "0 of 1", "parked")
        assert channel.queue_declare(f"{queue}.dlq", passive=True).method.message_count == 1

        approve = subprocess.run(
            [laissez_bin(), "approve", "--key", "alice.key", "--aud", queue, "--amqp", AMQP_URL,
             "--from", f"{queue}.dlq", "--trust", "trust.pub", "--tools", "tools.toml",
             "--approvers", "approvers.pub", "--revocations-stream", stream,
             "--redis", REDIS_URL, "--yes"],
            cwd=tmp_path, capture_output=True, timeout=60, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("LAISSEZ_")},
        )
        assert approve.returncode == 0, approve.stderr.decode()
        handled = []
        [ran] = run_worker(helper, queue, worker, handled.append)
    finally:
        channel.queue_delete(stream)
    assert ran.action == "run" and ran.decision["allowed"] and ran.decision["use"] == 1
    assert [(c.message_id, c.cls, c.approved_by, c.body) for c in handled] == [
        ("delete-7", "destructive", [keys["alice"].public_key().kid], b'{"ticket": 7}')]
    assert channel.queue_declare(f"{queue}.dlq", passive=True).method.message_count == 0


@pytest.mark.parametrize("helper", HELPERS)
def test_a_session_revoked_with_publish_revocation_runs_no_more(
        helper, tmp_path, channel, topology):
    queue = topology(f"laissez-pyworker-revoke-{uuid.uuid4().hex[:12]}")["queue"]
    stream = f"{queue}.revocations"
    issuer = laissez.SecretKey.generate()

    def envelope(session: str) -> laissez.Envelope:
        return laissez.sign(issuer, agent="agent-py", aud=queue, tools=["crm.*"],
                            classes="read", max_uses=5, session=session)

    task_42, task_43 = envelope("task-42"), envelope("task-43")
    worker = laissez.Worker([issuer.public_key()], queue, TOOLS, laissez.Ledger.memory(),
                            follow_revocations=AMQP_URL, revocation_stream=stream)
    try:
        publish_call(channel, queue, task_42, "crm.read", b"{}", message_id="before")
        assert worker.revocations_held == 0
        [before] = run_worker(helper, queue, worker, idle=1)
        assert before.action == "run" and before.session == "task-42"

        publish_revocation_with(helper, laissez.revoke(issuer, session="task-42"), stream)
        publish_call(channel, queue, task_42, "crm.read", b"{}", message_id="after")
        publish_call(channel, queue, task_43, "crm.read", b"{}", message_id="other-session")
        deadline = time.time() + 30
        while worker.revocations_held != 1:  # the follower reads the stream live
            assert time.time() < deadline, "the follower never got the record"
            time.sleep(0.05)
        decided = run_worker(helper, queue, worker, idle=1)
    finally:
        channel.queue_delete(stream)
    said = {a.decision["message_id"]: (a.action, a.decision["reason"]) for a in decided}
    assert said == {"after": ("dead_letter", "revoked"), "other-session": ("run", None)}


@pytest.mark.parametrize("helper", HELPERS)
@pytest.mark.parametrize("quorum", [False, True])
def test_each_helper_declares_the_topology_of_laissez_declare(helper, quorum, tmp_path, channel):
    queue = f"laissez-pyworker-declare-{uuid.uuid4().hex[:12]}"
    try:
        names = declare_with(helper, queue, quorum=quorum)
        assert names == {"queue": queue, "dead_letter_exchange": f"{queue}.dlx",
                         "dead_letter_queue": f"{queue}.dlq", "retry_queue": f"{queue}.retry"}
        # `laissez declare` finds exactly its own objects there (any other argument would be
        # a precondition failure, exit 3).
        args = [laissez_bin(), "declare", "--amqp", AMQP_URL, "--queue", queue]
        out = subprocess.run(args + (["--quorum"] if quorum else []), cwd=tmp_path,
                             capture_output=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr.decode()
        assert out.stdout.decode().count("already there") == 4, out.stdout.decode()
    finally:
        for q in (queue, f"{queue}.dlq", f"{queue}.retry"):
            channel.queue_delete(q)
        channel.exchange_delete(f"{queue}.dlx")
