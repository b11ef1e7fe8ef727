"""What the Python worker costs (docs/benchmarks.md, "Python workers (issue 25)").

    python crates/python/bench/worker_bench.py [--rounds 7] [--messages 2000] [--no-redis]
                                               [--no-amqp] [--profile]

Needs the `laissez` package built in release mode (`maturin develop --release` or
`pip install ./crates/python`), pika and aio-pika, RabbitMQ at LAISSEZ_TEST_AMQP_URL (default
amqp://guest:guest@127.0.0.1:5672/%2f) and, for the Redis row, Redis at LAISSEZ_TEST_REDIS_URL
(default redis://127.0.0.1:6379/).

1. Per call, offline: `Worker.admit(headers, body, message_id)` + `Admission.finish(True)` on
   the memory ledger (and on Redis) against the bare gate, `Verifier.verify` of the same
   envelope, tool, class, message id and body. One envelope signed with max_uses 2**40 serves
   every call; each call has a fresh message id, so no use is replayed. The cases run
   interleaved, one batch of each per round; each figure is the median over the rounds, and
   each ratio is the median of the per-round ratios (a shared machine moves between rounds).
2. End to end on RabbitMQ: `--messages` calls are published to a fresh queue (declared by
   `declare_topology`) and consumed with prefetch 100 by `laissez.pika.consume` (one delivery at
   a time on the connection's thread) with a handler that does nothing, and by a bare pika
   consumer of the same `channel.consume` generator that only acks; the same for
   `laissez.aio_pika.consume` (up to prefetch deliveries at once) against a bare aio-pika
   consumer that only acks. The clock runs from the start of consuming to the last message's
   handler (or the bare consumer's last callback). The four cases run interleaved, each round
   on new queues, deleted afterwards.

`--profile` prints cProfile's top functions for one round of the bare pika consumer and of
`laissez.pika.consume`, then times one more `laissez.pika.consume` round by part: `admit`,
`finish`, and the rest (pika and the helper's Python).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import os
import pstats
import statistics
import sys
import time
import uuid

import aio_pika
import pika

import laissez
from laissez.aio_pika import consume as aio_consume
from laissez.pika import consume as pika_consume
from laissez.pika import declare_topology

AMQP_URL = os.environ.get("LAISSEZ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
REDIS_URL = os.environ.get("LAISSEZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/")
AUDIENCE = "laissez-worker-bench"
AGENT = "spiffe://acme.example/agent/support-bot"
TOOL = "crm.ticket.update"
CATALOGUE = {"crm.ticket.update": "write", "kb.search": "read"}
BODY = b'{"ticket": 42, "status": "closed"}'
PREFETCH = 100


def envelope(issuer: laissez.SecretKey) -> bytes:
    return bytes(laissez.sign(
        issuer, agent=AGENT, aud=AUDIENCE, tools=["crm.ticket.*", "kb.search"],
        classes="read+write", max_uses=2**40, ttl=3600, obo="tenant:acme/user:alice",
    ))


def headers_of(data: bytes) -> dict:
    return {"laissez-envelope": data, "laissez-tool": TOOL}


# --- 1. per call, offline ------------------------------------------------------------------


def offline(rounds: int, redis: bool) -> None:
    issuer = laissez.SecretKey.generate()
    data = envelope(issuer)
    headers = headers_of(data)
    verifier = laissez.Verifier(issuer.public_key(), AUDIENCE)
    workers = {"memory": laissez.Worker([issuer.public_key()], AUDIENCE, CATALOGUE,
                                        laissez.Ledger.memory())}
    if redis:
        workers["Redis"] = laissez.Worker([issuer.public_key()], AUDIENCE, CATALOGUE,
                                          laissez.Ledger(REDIS_URL))
    ids = (f"m-{n}" for n in itertools.count())

    def gate() -> None:
        d = verifier.verify(data, tool=TOOL, cls="write", message_id=next(ids), body=BODY)
        assert d.allowed, d

    def worker_call(w: laissez.Worker):
        def call() -> None:
            a = w.admit(headers, BODY, next(ids))
            assert a.action == "run", a.decision
            assert a.finish(True) == "ack"
        return call

    def split(w: laissez.Worker, n: int) -> tuple[float, float]:
        # admit alone, then finish alone, over the same n calls (ns per call).
        t = time.perf_counter()
        held = [w.admit(headers, BODY, next(ids)) for _ in range(n)]
        t_admit = time.perf_counter() - t
        t = time.perf_counter()
        for a in held:
            a.finish(True)
        t_finish = time.perf_counter() - t
        return t_admit * 1e9 / n, t_finish * 1e9 / n

    cases = {"gate": gate, **{f"worker {k}": worker_call(w) for k, w in workers.items()}}
    sizes = {name: batch_size(f) for name, f in cases.items()}
    times: dict[str, list[float]] = {name: [] for name in cases}
    parts: dict[str, list[tuple[float, float]]] = {k: [] for k in workers}
    for _ in range(rounds):
        for name, f in cases.items():
            n = sizes[name]
            t = time.perf_counter()
            for _ in range(n):
                f()
            times[name].append((time.perf_counter() - t) * 1e9 / n)
        for k, w in workers.items():
            parts[k].append(split(w, sizes[f"worker {k}"]))

    print(f"## per call, offline ({rounds} interleaved rounds; batches of about 0.2 s)")
    print()
    print("| case | time per call (median) | ratio to the gate (median of rounds) |")
    print("|---|---:|---:|")
    for name in cases:
        ratios = [a / b for a, b in zip(times[name], times["gate"])]
        label = ("`Verifier.verify` (the bare gate)" if name == "gate"
                 else f"`Worker.admit` + `finish(True)`, {name.split()[1]} ledger")
        print(f"| {label} | {statistics.median(times[name]) / 1000:.2f} µs | "
              f"{statistics.median(ratios):.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f}) |")
    print()
    for k in workers:
        admit = statistics.median(p[0] for p in parts[k])
        finish = statistics.median(p[1] for p in parts[k])
        print(f"{k} ledger, apart: admit {admit / 1000:.2f} µs, finish {finish / 1000:.2f} µs")
    print()


def batch_size(f) -> int:
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            f()
        spent = time.perf_counter() - t
        if spent >= 0.02:
            return max(1, int(n * 0.2 / spent))
        n *= 2


# --- 2. end to end on RabbitMQ -------------------------------------------------------------


def publish(channel, queue: str, data: bytes, count: int) -> None:
    headers = headers_of(data)
    for _ in range(count):
        channel.basic_publish("", queue, BODY, pika.BasicProperties(
            message_id=uuid.uuid4().hex, headers=headers))
    while channel.queue_declare(queue, passive=True).method.message_count < count:
        time.sleep(0.02)


def fresh_queue(channel, data: bytes, count: int) -> str:
    queue = f"laissez-worker-bench-{uuid.uuid4().hex[:12]}"
    declare_topology(channel, queue)
    publish(channel, queue, data, count)
    return queue


def drop(channel, queue: str) -> None:
    for name in (queue, f"{queue}.dlq", f"{queue}.retry"):
        channel.queue_delete(name)
    channel.exchange_delete(f"{queue}.dlx")


def bare_pika(channel, queue: str, count: int) -> float:
    channel.basic_qos(prefetch_count=PREFETCH)
    seen = 0
    start = time.perf_counter()
    end = start
    for method, _properties, _body in channel.consume(queue, inactivity_timeout=0.5):
        if method is None:
            break
        seen += 1
        if seen == count:
            end = time.perf_counter()
        channel.basic_ack(method.delivery_tag)
    channel.cancel()
    assert seen == count, (seen, count)
    return count / (end - start)


def helper_pika(channel, queue: str, count: int, worker: laissez.Worker) -> float:
    seen = [0]
    end = [0.0]

    def handler(call) -> None:
        seen[0] += 1
        if seen[0] == count:
            end[0] = time.perf_counter()

    start = time.perf_counter()
    pika_consume(channel, queue, worker, handler, prefetch=PREFETCH, idle_timeout=0.5)
    assert seen[0] == count, (seen[0], count)
    return count / (end[0] - start)


async def bare_aio(queue_name: str, count: int) -> float:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(queue_name)
        done = asyncio.get_running_loop().create_future()
        seen = [0]
        end = [0.0]

        async def on_message(message) -> None:
            seen[0] += 1
            if seen[0] == count:
                end[0] = time.perf_counter()
                done.set_result(None)
            await message.ack()

        start = time.perf_counter()
        tag = await queue.consume(on_message)
        await asyncio.wait_for(done, 120)
        await queue.cancel(tag)
        return count / (end[0] - start)


async def helper_aio(queue_name: str, count: int, worker: laissez.Worker) -> float:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        seen = [0]
        end = [0.0]

        async def handler(call) -> None:
            seen[0] += 1
            if seen[0] == count:
                end[0] = time.perf_counter()

        start = time.perf_counter()
        await aio_consume(queue, worker, handler, prefetch=PREFETCH, idle_timeout=0.5)
        assert seen[0] == count, (seen[0], count)
        return count / (end[0] - start)


class TimedWorker:
    """A `Worker` that adds up the time spent in `admit` and in its admissions' `finish`, for
    `--profile`'s split of a `laissez.pika.consume` round."""

    def __init__(self, worker: laissez.Worker) -> None:
        self.worker = worker
        self.admit_s = 0.0
        self.finish_s = 0.0

    def admit(self, headers, body, message_id):
        t = time.perf_counter()
        admission = self.worker.admit(headers, body, message_id)
        self.admit_s += time.perf_counter() - t
        return TimedAdmission(admission, self)


class TimedAdmission:
    def __init__(self, admission: laissez.Admission, timed: TimedWorker) -> None:
        self.admission = admission
        self.timed = timed

    def __getattr__(self, name: str):
        return getattr(self.admission, name)

    def finish(self, outcome):
        t = time.perf_counter()
        how = self.admission.finish(outcome)
        self.timed.finish_s += time.perf_counter() - t
        return how


def end_to_end(rounds: int, count: int, profile: bool) -> None:
    issuer = laissez.SecretKey.generate()
    data = envelope(issuer)
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    def worker() -> laissez.Worker:
        return laissez.Worker([issuer.public_key()], AUDIENCE, CATALOGUE,
                              laissez.Ledger.memory())

    rates: dict[str, list[float]] = {k: [] for k in ("bare pika", "laissez.pika.consume",
                                                     "bare aio-pika", "laissez.aio_pika.consume")}
    for _ in range(rounds):
        for name in rates:
            queue = fresh_queue(channel, data, count)
            try:
                if name == "bare pika":
                    rate = bare_pika(channel, queue, count)
                elif name == "laissez.pika.consume":
                    rate = helper_pika(channel, queue, count, worker())
                elif name == "bare aio-pika":
                    rate = asyncio.run(bare_aio(queue, count))
                else:
                    rate = asyncio.run(helper_aio(queue, count, worker()))
            finally:
                drop(channel, queue)
            rates[name].append(rate)

    print(f"## end to end on RabbitMQ ({count} messages per case, prefetch {PREFETCH}, "
          f"{rounds} interleaved rounds, memory ledger)")
    print()
    print("| case | msg/s (median) | ratio to its bare consumer (median of rounds) |")
    print("|---|---:|---:|")
    for name, bare in (("bare pika", None), ("laissez.pika.consume", "bare pika"),
                       ("bare aio-pika", None), ("laissez.aio_pika.consume", "bare aio-pika")):
        if bare is None:
            ratio = "1.00x"
        else:
            rs = [a / b for a, b in zip(rates[name], rates[bare])]
            ratio = f"{statistics.median(rs):.2f}x (rounds {min(rs):.2f}-{max(rs):.2f})"
        print(f"| {name} | {statistics.median(rates[name]):,.0f} | {ratio} |")
    print()

    if profile:
        for name, run in (("bare pika", lambda q: bare_pika(channel, q, count)),
                          ("laissez.pika.consume",
                           lambda q: helper_pika(channel, q, count, worker()))):
            queue = fresh_queue(channel, data, count)
            profiler = cProfile.Profile()
            try:
                profiler.enable()
                run(queue)
                profiler.disable()
            finally:
                drop(channel, queue)
            print(f"## cProfile of one {name} round ({count} messages)")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(8)
        timed = TimedWorker(worker())
        queue = fresh_queue(channel, data, count)
        try:
            rate = helper_pika(channel, queue, count, timed)  # type: ignore[arg-type]
        finally:
            drop(channel, queue)
        total = count / rate
        print(f"## one laissez.pika.consume round, timed by part: {total * 1e3:.0f} ms in all "
              f"({rate:,.0f} msg/s), admit {timed.admit_s * 1e3:.0f} ms "
              f"({timed.admit_s * 1e6 / count:.1f} µs each), finish {timed.finish_s * 1e3:.0f} ms "
              f"({timed.finish_s * 1e6 / count:.1f} µs each), the rest (pika, the helper's "
              f"Python) {(total - timed.admit_s - timed.finish_s) * 1e3:.0f} ms")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis ledger row")
    parser.add_argument("--no-amqp", action="store_true", help="skip the RabbitMQ part")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile one round of bare pika and of laissez.pika.consume")
    args = parser.parse_args()
    print(f"laissez Python worker benchmark (CPython {sys.version.split()[0]}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}, "
          f"pika {pika.__version__}, aio-pika {aio_pika.__version__})")
    print()
    offline(args.rounds, not args.no_redis)
    if not args.no_amqp:
        end_to_end(args.rounds, args.messages, args.profile)


if __name__ == "__main__":
    main()
