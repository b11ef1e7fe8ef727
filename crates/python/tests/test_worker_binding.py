"""`laissez.Worker` and `Admission` themselves, without a broker: headers as pika and aio-pika
hand them over, every action, finishing, and the arguments it refuses (docs/spec.md §9)."""

from __future__ import annotations

import threading

import pytest

import laissez

TOOLS = {"crm.read": "read", "crm.ticket.delete": "destructive"}


@pytest.fixture
def issuer() -> laissez.SecretKey:
    return laissez.SecretKey.generate()


def worker(issuer, **options) -> laissez.Worker:
    return laissez.Worker([issuer.public_key()], "q", TOOLS, laissez.Ledger.memory(), **options)


def headers(issuer, tool="crm.read", session=None, text=False) -> dict:
    envelope = laissez.sign(issuer, agent="agent-w", aud="q", tools=["crm.*"],
                            classes="read+destructive", max_uses=5, session=session)
    return {"laissez-envelope": envelope.text if text else bytes(envelope), "laissez-tool": tool,
            "x-other": object()}


def test_an_allowed_call_runs_then_is_replayed_and_finishing_says_how_to_settle(issuer):
    w = worker(issuer)
    h = headers(issuer, session="task-1")
    a = w.admit(h, b"{}", "m-1")
    assert a.action == "run" and a.retry_after is None and a.retry_reason is None
    assert (a.agent, a.tool, a.cls, a.use, a.session, a.obo) == (
        "agent-w", "crm.read", "read", 1, "task-1", None)
    assert (a.chain, a.approved_by, a.taken_over, a.message_id) == (["agent-w"], [], False, "m-1")
    assert a.kid == issuer.kid and len(a.cti) == 32
    assert a.decision == {"message_id": "m-1", "allowed": True, "reason": None, "detail": None,
                          "cti": a.cti, "agent": "agent-w", "tool": "crm.read",
                          "class": "read", "use": 1}
    assert a.decision_line == (
        f'{{"message_id":"m-1","allowed":true,"reason":null,"cti":"{a.cti}",'
        '"agent":"agent-w","tool":"crm.read","class":"read","use":1}')
    assert a.finish(True) == "ack"
    with pytest.raises(laissez.LaissezError) as twice:
        a.finish(True)
    assert twice.value.reason == "finished"
    again = w.admit(h, b"{}", "m-1")
    assert (again.action, again.decision["reason"]) == ("dead_letter", "replayed")
    with pytest.raises(ValueError):
        again.finish(True)
    assert again.agent is None and again.use is None
    assert w.stats == {"received": 2, "handled": 1, "denied": 1, "parked": 0, "requeued": 0,
                       "handler_failures": 0}


def test_headers_arrive_as_the_broker_sent_them_and_bad_ones_are_the_readers_refusals(issuer):
    w = worker(issuer)
    # Text (a LongString pika decoded) is read as the envelope's base64url form.
    assert w.admit(headers(issuer, text=True), b"", "m-text").action == "run"
    for name, value, detail in [
        ("laissez-tool", 5, "bad_tool"),
        ("laissez-tool", None, "bad_tool"),
        ("laissez-envelope", ["not", "bytes"], "bad_envelope_header"),
        ("laissez-envelope", {"a": 1}, "bad_envelope_header"),
        ("laissez-approvals", b"not a list", "approvals_header_not_an_array"),
        ("laissez-approvals", [1.5], "approval_not_bytes_or_text"),
        ("laissez-chain", [], "chain_header_empty"),
    ]:
        h = headers(issuer)
        h[name] = value
        a = w.admit(h, b"", f"m-{name}-{detail}")
        assert (a.action, a.decision["reason"]) == ("dead_letter", "malformed"), (name, value)
        assert a.decision["detail"] == detail, (name, value)
    missing = w.admit(headers(issuer), b"", None)
    assert (missing.decision["reason"], missing.decision["message_id"]) == ("malformed", None)
    assert w.admit(None, b"", "m-none").decision["reason"] == "malformed"
    with pytest.raises(TypeError):
        w.admit([("laissez-tool", "crm.read")], b"", "m-list")


def test_a_failure_dead_letters_or_requeues_as_configured_and_a_held_use_is_in_flight(issuer):
    w = worker(issuer, on_error="requeue", requeue_after=2.5, retry_delays=(0.5, 1.0))
    h = headers(issuer)
    a = w.admit(h, b"", "m-1")
    # Held: another delivery of the same message waits, with the middleware's backoff.
    waits = [w.admit(h, b"", "m-1") for _ in range(3)]
    assert [(x.action, x.retry_after, x.retry_reason, x.decision) for x in waits] == [
        ("requeue", 0.5, "in_flight", None), ("requeue", 1.0, "in_flight", None),
        ("requeue", 1.0, "in_flight", None)]
    assert a.finish("ValueError: boom") == ("requeue", 2.5)
    b = w.admit(h, b"", "m-1")
    assert (b.use, b.taken_over) == (1, True)
    assert b.finish(False) == ("requeue", 2.5)
    # Never for a destructive call (docs/spec.md §9): it may have run in part.
    d = laissez.Worker([issuer.public_key()], "q", TOOLS, laissez.Ledger.memory(),
                       on_error="requeue").admit(headers(issuer, "crm.ticket.delete"), b"", "d")
    assert d.action == "run" and d.finish("boom") == "dead_letter"
    assert w.stats["handler_failures"] == 2 and w.stats["requeued"] == 5
    with pytest.raises(TypeError):
        b.finish(1)


def test_an_admission_dropped_unfinished_leaves_its_use_to_its_lease(issuer):
    w = worker(issuer, lease=1)
    h = headers(issuer)
    a = w.admit(h, b"", "m-1")
    assert a.use == 1
    del a
    import time

    assert w.admit(h, b"", "m-1").retry_reason == "in_flight"
    time.sleep(1.2)
    b = w.admit(h, b"", "m-1")
    assert (b.action, b.use, b.taken_over) == ("run", 1, True)


def test_a_revocation_set_applies_to_the_next_admission_and_threads_share_the_worker(issuer):
    held = laissez.RevocationSet([issuer.public_key()])
    w = worker(issuer, revocations=held)
    assert w.admit(headers(issuer, session="s-1"), b"", "m-1").finish() == "ack"
    assert (w.revocations_held, worker(issuer).revocations_held) == (0, None)
    held.add(laissez.revoke(issuer, session="s-1"))
    assert w.revocations_held == 1
    assert w.admit(headers(issuer, session="s-1"), b"", "m-2").decision["reason"] == "revoked"
    # Many threads at once: each message runs once.
    results: list[str] = []

    def admit(n: int) -> None:
        a = w.admit(headers(issuer, session="s-2"), b"", f"t-{n}")
        results.append(a.finish() if a.action == "run" else a.action)

    threads = [threading.Thread(target=admit, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ack"] * 8


def test_the_arguments_it_refuses(issuer):
    stranger = laissez.SecretKey.generate()
    with pytest.raises(laissez.LaissezError) as e:
        worker(issuer, revocations=laissez.RevocationSet([stranger.public_key()]))
    assert e.value.reason == "unknown_key"
    with pytest.raises(TypeError):
        worker(issuer, revocations=laissez.RevocationSet([issuer.public_key()]),
               follow_revocations="amqp://127.0.0.1:5672/%2f")
    with pytest.raises(laissez.LaissezError) as e:
        worker(issuer, approvers=[issuer.public_key()])
    assert e.value.reason == "approver_is_issuer"
    with pytest.raises(ValueError):
        worker(issuer, on_error="retry")
    with pytest.raises(laissez.LaissezError):
        laissez.Worker([issuer.public_key()], "q", {}, laissez.Ledger.memory())
    with pytest.raises(laissez.LaissezError) as e:
        worker(issuer, follow_revocations="amqp://127.0.0.1:1/%2f", catch_up_timeout=2)
    assert e.value.reason == "revocations_unavailable"
    assert repr(worker(issuer)) == 'Worker(audience="q", queue="q", tools=2)'


AUDIT_SCRIPT = """
import laissez
issuer = laissez.SecretKey.generate()
assert laissez.log_to_stderr() and not laissez.log_to_stderr()
worker = laissez.Worker([issuer.public_key()], "q", {"crm.read": "read"}, laissez.Ledger.memory(),
                        queue="q.work")
envelope = laissez.sign(issuer, agent="agent-w", aud="q", tools=["crm.*"], max_uses=1)
headers = {"laissez-envelope": bytes(envelope), "laissez-tool": "crm.read"}
assert worker.admit(headers, b"", "m-1").finish() == "ack"
assert worker.admit(headers, b"", "m-2").decision["reason"] == "uses_exhausted"
"""


def test_log_to_stderr_writes_one_audit_event_per_decision_as_laissez_consume_does():
    import json
    import re
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", AUDIT_SCRIPT], capture_output=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr.decode()
    events = [json.loads(m.group(1)) for m in
              re.finditer(r"laissez::audit: .* audit=(\{.*\})\s*$", out.stderr.decode(), re.M)]
    assert [(e["message_id"], e["allowed"], e.get("reason"), e["queue"], e["agent"])
            for e in events] == [("m-1", True, None, "q.work", "agent-w"),
                                 ("m-2", False, "uses_exhausted", "q.work", "agent-w")]
