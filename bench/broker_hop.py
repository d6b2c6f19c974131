"""The job queue measured alone: ``python -m bench.broker_hop`` times its share of the time to
first token, and :func:`ceiling` (``make bench``'s ``queue_ceiling``, or ``--ceiling N ...``)
how many jobs it takes.

The hop is one job at a time, as the gateway sends it and a worker takes it: a persistent message
published with confirms (``shared.amqp``), timed from the publish to its delivery to a consumer
on another connection, and to the publisher's confirm. Measured on the queue as chatstream
declares it (quorum, with a delivery limit and a dead-letter queue) and, for comparison only, on
a classic durable queue on the same broker. Each queue is on a namespace of its own, deleted
afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench import procs, usage
from bench.stats import summarize_ns
from shared.amqp import declare_topology
from shared.names import Names

JOB_BODY = b"x" * 300  # about a job's msgpack
# Deliveries unacked at once in the ceiling's run: a few workers' WORKER_CONCURRENCY.
CEILING_PREFETCH = 64
# How long the ceiling's consumer may take to catch up once publishing stops.
CEILING_DRAIN_S = 30.0


async def _measure(url: str, count: int, *, quorum: bool) -> dict[str, Any]:
    names = Names(procs.new_namespace("broker-quorum" if quorum else "broker-classic"))
    publisher = await aio_pika.connect(url)
    consumer = await aio_pika.connect(url)
    try:
        pub_channel = await publisher.channel(publisher_confirms=True)
        if quorum:
            exchange, _ = await declare_topology(pub_channel, names)
        else:
            exchange = await pub_channel.declare_exchange(
                names.jobs_exchange, aio_pika.ExchangeType.DIRECT, durable=True
            )
            classic = await pub_channel.declare_queue(names.jobs_queue, durable=True)
            await classic.bind(exchange, routing_key=names.jobs_routing_key)
        con_channel = await consumer.channel()
        await con_channel.set_qos(prefetch_count=8)
        queue = await con_channel.get_queue(names.jobs_queue)
        delivered: asyncio.Queue[int] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            delivered.put_nowait(time.monotonic_ns())
            await message.ack()

        await queue.consume(on_message)
        to_delivery: list[int] = []
        to_confirm: list[int] = []
        for _ in range(count):
            message = _job_message()
            started = time.monotonic_ns()
            await exchange.publish(message, routing_key=names.jobs_routing_key)
            to_confirm.append(time.monotonic_ns() - started)
            to_delivery.append(await asyncio.wait_for(delivered.get(), 5) - started)
        return {"delivery": summarize_ns(to_delivery), "confirm": summarize_ns(to_confirm)}
    finally:
        await consumer.close()
        await publisher.close()
        await procs.purge_namespace(names)


def _job_message() -> aio_pika.Message:
    return aio_pika.Message(JOB_BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)


async def ceiling(url: str, duration_s: float, in_flight: int) -> dict[str, Any]:
    """Jobs per second through one job queue as chatstream declares it (quorum), and the
    broker's CPU per job: for ``duration_s``, ``in_flight`` publishes wait for their confirms
    at any time on one channel, as a gateway's concurrent requests do on its publishing
    channel, while a consumer on another connection acks each delivery (``CEILING_PREFETCH``
    unacked at most, a few workers' worth). The broker's CPU is counted until every confirmed
    job has been delivered and acked, so it is the whole of a job's cost there. The load runs in
    this one Python process, on the same cores as the broker: a figure the broker keeps up with
    is a floor of its ceiling, and its CPU per job is what a model of a bigger machine uses."""
    names = Names(procs.new_namespace("broker-ceiling"))
    publisher = await aio_pika.connect(url)
    consumer = await aio_pika.connect(url)
    # Its CPU is read only where it runs on this machine.
    broker_pids = usage.server_pids().get("broker", [])
    broker = {"broker": broker_pids} if broker_pids else {}
    try:
        channel = await publisher.channel(publisher_confirms=True)
        exchange, _ = await declare_topology(channel, names)
        consumer_channel = await consumer.channel()
        await consumer_channel.set_qos(prefetch_count=CEILING_PREFETCH)
        queue = await consumer_channel.get_queue(names.jobs_queue)
        counts = {"confirmed": 0, "delivered": 0}
        publishing = True
        all_delivered = asyncio.Event()

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            counts["delivered"] += 1
            if not publishing and counts["delivered"] >= counts["confirmed"]:
                all_delivered.set()

        await queue.consume(on_message)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s

        async def publish_until_deadline() -> None:
            while loop.time() < deadline:
                await exchange.publish(_job_message(), routing_key=names.jobs_routing_key)
                counts["confirmed"] += 1

        cpu_before, busy_before = usage.cpu_seconds(broker), usage.machine_busy_seconds()
        started = loop.time()
        await asyncio.gather(*(publish_until_deadline() for _ in range(in_flight)))
        published_s = loop.time() - started
        publishing = False
        if counts["delivered"] < counts["confirmed"]:
            await asyncio.wait_for(all_delivered.wait(), CEILING_DRAIN_S)
        elapsed_s = loop.time() - started
        cpu = usage.cpu_delta(cpu_before, usage.cpu_seconds(broker))
        busy_after = usage.machine_busy_seconds()
        confirmed = counts["confirmed"]
        broker_cpu_s = None if cpu is None else cpu.get("broker")
        return {
            "in_flight": in_flight,
            "published_s": round(published_s, 2),
            "confirmed": confirmed,
            "delivered": counts["delivered"],
            "confirmed_per_s": round(confirmed / published_s),
            "delivered_per_s": round(counts["delivered"] / elapsed_s),
            "broker_cpu_ms_per_job": (
                None if broker_cpu_s is None else round(broker_cpu_s * 1000 / confirmed, 3)
            ),
            "machine_busy_cores": (
                None
                if busy_before is None or busy_after is None
                else round((busy_after - busy_before) / elapsed_s, 2)
            ),
        }
    finally:
        await consumer.close()
        await publisher.close()
        await procs.purge_namespace(names)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument(
        "--ceiling",
        type=int,
        nargs="+",
        metavar="IN_FLIGHT",
        help="instead of the hop, the queue's jobs/s with this many publishes in flight",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="each ceiling run's length")
    args = parser.parse_args()
    if args.ceiling:
        ceilings = {n: await ceiling(procs.AMQP_URL, args.seconds, n) for n in args.ceiling}
        print(json.dumps(ceilings, indent=2))
        return
    results = {
        "quorum (chatstream's queue)": await _measure(procs.AMQP_URL, args.count, quorum=True),
        "classic, for comparison": await _measure(procs.AMQP_URL, args.count, quorum=False),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
