"""Publishing calls, running a worker, revoking, and declaring a worker's queues, with pika
(``pip install 'laissez-agents[pika]'``).

``publish_call`` sets every header of ``docs/spec.md`` §5 that applies, signs the holder's
invocation when the envelope is holder-bound, and publishes mandatory with publisher
confirms: it returns only once the broker has taken the message, and raises otherwise.

``consume`` runs a worker: each delivery goes through a ``laissez.Worker`` (the AMQP
middleware's own gatekeeper: the same decisions, audit events, ledger calls and retry delays
as ``laissez consume``, ``docs/spec.md`` §9), the handler runs only for an allowed call, and the
delivery is settled as the worker says. ``publish_revocation`` publishes a revocation record
to the stream workers follow (§14), as ``laissez revoke --amqp`` does.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

from laissez._call import STREAM_ARGUMENTS, Call, failure
from laissez._laissez import (
    Admission, Approval, Chain, Envelope, Record, SecretKey, Worker, _topology, invoke,
)

if TYPE_CHECKING:  # pika is optional: only the caller's channel is needed at run time
    from pika.adapters.blocking_connection import BlockingChannel

__all__ = ["Call", "consume", "declare_topology", "publish_call", "publish_revocation"]


def declare_topology(
    channel: "BlockingChannel",
    queue: str,
    *,
    quorum: bool = False,
    delivery_limit: int = 20,
) -> dict[str, str]:
    """Declares ``queue``'s standard topology, as ``laissez declare`` and the Rust
    ``Topology`` do (``docs/spec.md`` §9; the names and arguments are that ``Topology``'s),
    all durable: the fanout exchange ``QUEUE.dlx``, the
    queue ``QUEUE.dlq`` bound to it (where refused messages and calls parked for approval
    land), ``queue`` dead-lettering to ``QUEUE.dlx``, and the retry queue ``QUEUE.retry``
    dead-lettering back to ``queue`` through the default exchange. ``quorum`` makes them quorum
    queues, ``queue`` with ``x-delivery-limit`` = ``delivery_limit``.

    Idempotent: declaring again changes nothing. An existing queue or exchange of these names
    with other arguments makes the broker close the channel (pika's
    ``ChannelClosedByBroker``, 406 PRECONDITION_FAILED, naming the argument); nothing existing
    is changed. Returns the names: ``queue``, ``dead_letter_exchange``,
    ``dead_letter_queue``, ``retry_queue``.
    """
    names, arguments = _topology(queue, quorum=quorum, delivery_limit=delivery_limit)
    channel.exchange_declare(names["dead_letter_exchange"], exchange_type="fanout", durable=True)
    channel.queue_declare(
        names["dead_letter_queue"], durable=True, arguments=arguments["dead_letter_queue"]
    )
    channel.queue_bind(names["dead_letter_queue"], names["dead_letter_exchange"], routing_key="")
    channel.queue_declare(queue, durable=True, arguments=arguments["queue"])
    channel.queue_declare(names["retry_queue"], durable=True, arguments=arguments["retry_queue"])
    return names


def _confirming(channel: "BlockingChannel") -> None:
    # pika keeps no public flag; BlockingChannel.confirm_delivery() may be called only once.
    if not getattr(channel, "_delivery_confirmation", False):
        channel.confirm_delivery()


def publish_call(
    channel: "BlockingChannel",
    queue: str,
    envelope: Union[Envelope, Chain, bytes, str, Sequence[Union[Envelope, bytes, str]]],
    tool: str,
    body: bytes,
    agent_key: Optional[SecretKey] = None,
    message_id: Optional[str] = None,
    *,
    cls: Optional[str] = None,
    aud: Optional[str] = None,
    exchange: str = "",
    approvals: Optional[Sequence[Union[Approval, bytes, str]]] = None,
    now: Optional[int] = None,
) -> str:
    """Publishes one call of ``tool`` with ``body`` under ``envelope`` to ``queue``.

    Sets ``message_id`` (a fresh UUID when not given) and the headers ``laissez-envelope``
    (raw bytes), ``laissez-tool``, ``laissez-class`` (when ``cls`` is given) and, for a
    holder-bound envelope, ``laissez-invocation``: signed with ``agent_key`` over exactly this
    call, which needs ``cls`` (the worker's class for the tool) and the worker's audience
    ``aud`` (default: the envelope's only audience, or else ``queue`` when the envelope lists
    it). Publishes to ``exchange`` (default: the default exchange, routing key ``queue``),
    mandatory, with publisher confirms. Returns the message id.

    ``envelope`` may be a delegation chain (a ``Chain``, chain text joined by ``.``, or a list
    of envelopes root first): the leaf goes in ``laissez-envelope``, its ancestors, root
    first, in ``laissez-chain``, and the invocation is signed over the leaf. ``approvals``
    (``Approval``, raw bytes or base64url text; at most 16) go in ``laissez-approvals`` as raw
    bytes: approvals are signed over the message id, so pass the same ``message_id``.

    Raises ``ValueError`` for a holder-bound envelope without ``agent_key`` or ``cls``,
    ``laissez.SignError`` when the envelope does not grant the call, and pika's
    ``UnroutableError``/``NackError`` when the broker does not take the message.
    """
    import pika  # the optional dependency, imported when used

    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, not {type(body).__name__}")
    body = bytes(body)
    chain = envelope if isinstance(envelope, Chain) else Chain(envelope)
    env = chain.leaf
    message_id = message_id if message_id is not None else uuid.uuid4().hex
    headers: dict[str, object] = {"laissez-envelope": bytes(env), "laissez-tool": tool}
    if len(chain) > 1:
        headers["laissez-chain"] = [bytes(link) for link in chain.ancestors]
    if approvals is not None:
        if isinstance(approvals, (str, bytes, bytearray, memoryview, Approval)):
            raise TypeError("approvals is a list of approvals, not one")
        if len(approvals) > 16:
            raise ValueError("at most 16 approvals come with one call")
        headers["laissez-approvals"] = [bytes(Approval(a)) if not isinstance(a, Approval)
                                        else bytes(a) for a in approvals]
    if cls is not None:
        headers["laissez-class"] = cls
    claims = env.claims
    if claims.get("cnf") is not None:
        if agent_key is None:
            raise ValueError("the envelope is holder-bound: pass agent_key to sign the call")
        if cls is None:
            raise ValueError("the envelope is holder-bound: pass cls, the tool's class")
        if aud is None:
            audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
            if len(audiences) == 1:
                aud = audiences[0]
            elif queue in audiences:
                aud = queue
            else:
                raise ValueError("the envelope lists several audiences: pass aud")
        invocation = invoke(
            agent_key, env, aud=aud, message_id=message_id, tool=tool, cls=cls,
            body=body, now=now,
        )
        headers["laissez-invocation"] = bytes(invocation)
    _confirming(channel)
    channel.basic_publish(
        exchange=exchange,
        routing_key=queue,
        body=body,
        properties=pika.BasicProperties(
            message_id=message_id, headers=headers, delivery_mode=2
        ),
        mandatory=True,
    )
    return message_id


def consume(
    channel: "BlockingChannel",
    queue: str,
    worker: Worker,
    handler: Callable[[Call], None],
    *,
    prefetch: int = 32,
    idle_timeout: Optional[float] = None,
    on_decision: Optional[Callable[[Admission], None]] = None,
) -> None:
    """Consumes ``queue`` on ``channel`` until ``idle_timeout`` seconds pass without a
    delivery and with none waiting to come back (never, when None), or until the channel is
    cancelled. Each delivery goes through ``worker.admit``: an allowed call is handed to
    ``handler`` (a plain function of a ``Call``: returning is success, raising a failure), then
    ``finish``-ed, and settled exactly as the worker says: ``basic_ack``; ``basic_reject``
    without requeue to dead-letter (a denial, a call parked for approval, a failure); or
    ``basic_nack`` with requeue once the delay it gives has passed (``connection.call_later``;
    the delivery holds its prefetch slot meanwhile). ``on_decision`` is called with the
    ``Admission`` of every decision (run or dead-lettered; a requeue is not a decision).
    Messages run one at a time, on the connection's thread: a handler that runs longer than
    the heartbeat interval needs a longer one (pika's ``heartbeat`` connection parameter), or
    ``laissez.aio_pika``. ``prefetch`` is the ``basic_qos`` prefetch count.
    """
    if prefetch < 1:
        raise ValueError("prefetch must be at least 1")
    connection = channel.connection
    channel.basic_qos(prefetch_count=prefetch)
    waiting = [0]  # deliveries whose requeue is due later

    def later(delay: float, tag: int) -> None:
        waiting[0] += 1

        def requeue() -> None:
            waiting[0] -= 1
            if channel.is_open:
                channel.basic_nack(tag, requeue=True)

        connection.call_later(delay, requeue)

    def settle(how: Union[str, tuple[str, float]], tag: int) -> None:
        if how == "ack":
            channel.basic_ack(tag)
        elif how == "dead_letter":
            channel.basic_reject(tag, requeue=False)
        elif isinstance(how, tuple):
            later(how[1], tag)
        else:
            raise ValueError(f"unknown settlement {how!r}")

    for method, properties, body in channel.consume(queue, inactivity_timeout=idle_timeout):
        if method is None:
            if waiting[0] == 0:
                break
            continue
        admission = worker.admit(properties.headers, body, properties.message_id)
        if admission.action == "requeue":
            later(admission.retry_after or 0.0, method.delivery_tag)
            continue
        if on_decision is not None:
            on_decision(admission)
        if admission.action == "dead_letter":
            channel.basic_reject(method.delivery_tag, requeue=False)
            continue
        call = Call(admission, bytes(body), dict(properties.headers or {}),
                    bool(method.redelivered))
        outcome: Union[bool, str] = True
        try:
            handler(call)
        except Exception as error:  # a handler's failure, never the worker's end
            outcome = failure(error)
        settle(admission.finish(outcome), method.delivery_tag)
    channel.cancel()


def publish_revocation(
    channel: "BlockingChannel",
    record: Union[Record, bytes, str],
    stream: str = "laissez.revocations",
) -> None:
    """Publishes a revocation record (``laissez.revoke(...)``; or its bytes or text) to
    ``stream``, as ``laissez revoke --amqp`` does (``docs/spec.md`` §14): declares the stream
    when absent (``x-queue-type: stream``, ``x-max-age: 8D``; a queue of that name declared
    otherwise makes the broker close the channel), then publishes the record's bytes through
    the default exchange, persistent, mandatory, with publisher confirms. Returns once the
    broker has taken it; a record that reaches no queue raises pika's ``UnroutableError``.
    """
    import pika  # the optional dependency, imported when used

    data = bytes(record if isinstance(record, Record) else Record(record))
    channel.queue_declare(stream, durable=True, arguments=dict(STREAM_ARGUMENTS))
    _confirming(channel)
    channel.basic_publish(
        exchange="",
        routing_key=stream,
        body=data,
        properties=pika.BasicProperties(delivery_mode=2),
        mandatory=True,
    )

