"""Runs a Python worker over a queue with either helper, `laissez.pika.consume` (blocking) or
`laissez.aio_pika.consume` (asyncio), the same way: the tests of test_worker.py run each case
under both."""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

import pika

import laissez
from conftest import AMQP_URL

HELPERS = ["pika", "aio_pika"]

Handler = Callable[[object], None]


def run_worker(
    helper: str,
    queue: str,
    worker: laissez.Worker,
    handler: Optional[Handler] = None,
    *,
    idle: float = 2.0,
    prefetch: int = 1,
) -> list[laissez.Admission]:
    """Consumes `queue` with `helper` until idle for `idle` seconds; returns the admissions
    of every decision, in order. `handler` runs for each allowed call (a plain function; under
    aio-pika it is awaited through a coroutine that calls it)."""
    decisions: list[laissez.Admission] = []
    handler = handler or (lambda call: None)
    if helper == "pika":
        from laissez.pika import consume

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            consume(connection.channel(), queue, worker, handler, prefetch=prefetch,
                    idle_timeout=idle, on_decision=decisions.append)
        finally:
            connection.close()
        return decisions

    import aio_pika

    from laissez.aio_pika import consume as consume_async

    async def handle(call) -> None:
        handler(call)

    async def main() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            work = await channel.get_queue(queue)
            await consume_async(work, worker, handle, prefetch=prefetch, idle_timeout=idle,
                                on_decision=decisions.append)
        finally:
            await connection.close()

    asyncio.run(main())
    return decisions


def publish_revocation_with(helper: str, record: laissez.Record, stream: str) -> None:
    """Publishes `record` to `stream` with the helper's own `publish_revocation`."""
    if helper == "pika":
        from laissez.pika import publish_revocation

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            publish_revocation(connection.channel(), record, stream)
        finally:
            connection.close()
        return

    import aio_pika

    from laissez.aio_pika import publish_revocation as publish_async

    async def main() -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            await publish_async(await connection.channel(), record, stream)

    asyncio.run(main())


def declare_with(helper: str, queue: str, **options) -> dict[str, str]:
    """Declares `queue`'s topology with the helper's own `declare_topology`."""
    if helper == "pika":
        from laissez.pika import declare_topology

        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        try:
            return declare_topology(connection.channel(), queue, **options)
        finally:
            connection.close()

    import aio_pika

    from laissez.aio_pika import declare_topology as declare_async

    async def main() -> dict[str, str]:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            return await declare_async(await connection.channel(), queue, **options)

    return asyncio.run(main())
