"""Running a worker, revoking, and declaring a worker's queues on asyncio, with aio-pika
(``pip install 'laissez-agents[aio-pika]'``): the asyncio equivalents of ``laissez.pika``.

``consume`` hands each delivery to a ``laissez.Worker`` (the AMQP middleware's own
gatekeeper: the same decisions, audit events, ledger calls and retry delays as ``laissez
consume``, ``docs/spec.md`` §9) in a thread (``asyncio.to_thread``: it waits for the ledger),
awaits the coroutine handler for an allowed call, and settles the delivery as the worker says.
Up to ``prefetch`` deliveries are handled at once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable, Optional, Union

from laissez._call import STREAM_ARGUMENTS, Call, failure
from laissez._laissez import Admission, Record, Worker, _topology

if TYPE_CHECKING:  # aio-pika is optional: only the caller's objects are needed at run time
    from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue

__all__ = ["Call", "consume", "declare_topology", "publish_revocation"]


async def declare_topology(
    channel: "AbstractChannel",
    queue: str,
    *,
    quorum: bool = False,
    delivery_limit: int = 20,
) -> dict[str, str]:
    """Declares ``queue``'s standard topology exactly as ``laissez.pika.declare_topology``
    (and ``laissez declare``) does, all durable: ``QUEUE.dlx`` (fanout), ``QUEUE.dlq`` bound to
    it, ``queue`` dead-lettering to ``QUEUE.dlx``, and ``QUEUE.retry`` dead-lettering back to
    ``queue``; quorum queues when ``quorum`` (``queue`` with ``x-delivery-limit``). Idempotent;
    other arguments on an existing name make the broker close the channel. Returns the names.
    """
    from aio_pika import ExchangeType  # the optional dependency, imported when used

    names, arguments = _topology(queue, quorum=quorum, delivery_limit=delivery_limit)
    dlx = await channel.declare_exchange(
        names["dead_letter_exchange"], ExchangeType.FANOUT, durable=True
    )
    dlq = await channel.declare_queue(
        names["dead_letter_queue"], durable=True, arguments=arguments["dead_letter_queue"]
    )
    await dlq.bind(dlx, routing_key="")
    await channel.declare_queue(queue, durable=True, arguments=arguments["queue"])
    await channel.declare_queue(
        names["retry_queue"], durable=True, arguments=arguments["retry_queue"]
    )
    return names


async def consume(
    queue: "AbstractQueue",
    worker: Worker,
    handler: Callable[[Call], Awaitable[None]],
    *,
    prefetch: int = 32,
    idle_timeout: Optional[float] = None,
    on_decision: Optional[Callable[[Admission], None]] = None,
) -> None:
    """Consumes ``queue`` until ``idle_timeout`` seconds pass with no delivery in hand (never,
    when None; cancel the task to stop). Sets the channel's prefetch to ``prefetch``: that many
    deliveries are handled at once. Each goes through ``worker.admit``; an allowed call is
    awaited in ``handler`` (a coroutine function of a ``Call``: returning is success, raising a
    failure) and ``finish``-ed; each delivery is settled exactly as the worker says: ``ack``;
    ``reject`` without requeue to dead-letter; or ``nack`` with requeue once the delay it gives
    has passed (holding its prefetch slot meanwhile). ``on_decision`` is called with the
    ``Admission`` of every decision (run or dead-lettered; a requeue is not a decision).
    """
    if prefetch < 1:
        raise ValueError("prefetch must be at least 1")
    await queue.channel.set_qos(prefetch_count=prefetch)
    loop = asyncio.get_running_loop()
    in_hand = [0]
    last = [loop.time()]

    async def on_message(message: "AbstractIncomingMessage") -> None:
        in_hand[0] += 1
        try:
            await _deliver(message, worker, handler, on_decision)
        finally:
            in_hand[0] -= 1
            last[0] = loop.time()

    tag = await queue.consume(on_message)
    try:
        if idle_timeout is None:
            await loop.create_future()  # until cancelled
        while True:
            await asyncio.sleep(min(idle_timeout or 0.1, 0.1))
            if in_hand[0] == 0 and loop.time() - last[0] >= (idle_timeout or 0.0):
                break
    finally:
        await queue.cancel(tag)


async def _deliver(
    message: "AbstractIncomingMessage",
    worker: Worker,
    handler: Callable[[Call], Awaitable[None]],
    on_decision: Optional[Callable[[Admission], None]],
) -> None:
    headers = dict(message.headers or {})
    admission = await asyncio.to_thread(worker.admit, headers, message.body, message.message_id)
    if admission.action == "requeue":
        await _requeue_after(message, admission.retry_after or 0.0)
        return
    if on_decision is not None:
        on_decision(admission)
    if admission.action == "dead_letter":
        await message.reject(requeue=False)
        return
    outcome: Union[bool, str] = True
    try:
        await handler(Call(admission, message.body, headers, bool(message.redelivered)))
    except Exception as error:  # a handler's failure, never the worker's end
        outcome = failure(error)
    how = await asyncio.to_thread(admission.finish, outcome)
    if how == "ack":
        await message.ack()
    elif isinstance(how, tuple):
        await _requeue_after(message, how[1])
    else:
        await message.reject(requeue=False)


async def _requeue_after(message: "AbstractIncomingMessage", delay: float) -> None:
    await asyncio.sleep(delay)
    await message.nack(requeue=True)


async def publish_revocation(
    channel: "AbstractChannel",
    record: Union[Record, bytes, str],
    stream: str = "laissez.revocations",
) -> None:
    """Publishes a revocation record to ``stream`` as ``laissez revoke --amqp`` does
    (``docs/spec.md`` §14): declares the stream when absent (``x-queue-type: stream``,
    ``x-max-age: 8D``), then publishes the record's bytes through the default exchange,
    persistent, mandatory, and waits for the broker's confirm. ``channel`` must have publisher
    confirms on (aio-pika's default). A record that reaches no queue raises
    ``aio_pika.exceptions.PublishError`` (or ``DeliveryError`` when the broker refuses it).
    """
    from aio_pika import DeliveryMode, Message
    from aio_pika.exceptions import PublishError
    from aiormq.abc import DeliveredMessage

    data = bytes(record if isinstance(record, Record) else Record(record))
    await channel.declare_queue(stream, durable=True, arguments=dict(STREAM_ARGUMENTS))
    confirmed = await channel.default_exchange.publish(
        Message(data, delivery_mode=DeliveryMode.PERSISTENT), routing_key=stream, mandatory=True
    )
    if confirmed is None:
        raise ValueError("the channel has publisher confirms off: a record must be confirmed")
    if isinstance(confirmed, DeliveredMessage):  # returned: it reached no queue
        raise PublishError(confirmed, confirmed.delivery)
