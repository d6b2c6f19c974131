"""``python -m bench.broker_hop``: the job queue's share of the time to first token.

One job at a time, as the gateway sends it and a worker takes it: a persistent message published
with confirms (``shared.amqp``), timed from the publish to its delivery to a consumer on another
connection, and to the publisher's confirm. Measured on the queue as chatstream declares it
(quorum, with a delivery limit and a dead-letter queue) and, for comparison only, on a classic
durable queue on the same broker. Each queue is on a namespace of its own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench import procs
from bench.stats import summarize_ns
from shared.amqp import declare_topology
from shared.names import Names


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
        body = b"x" * 300  # about a job's msgpack
        for _ in range(count):
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            started = time.monotonic_ns()
            await exchange.publish(message, routing_key=names.jobs_routing_key)
            to_confirm.append(time.monotonic_ns() - started)
            to_delivery.append(await asyncio.wait_for(delivered.get(), 5) - started)
        return {"delivery": summarize_ns(to_delivery), "confirm": summarize_ns(to_confirm)}
    finally:
        await consumer.close()
        await publisher.close()
        await procs.purge_namespace(names)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    results = {
        "quorum (chatstream's queue)": await _measure(procs.AMQP_URL, args.count, quorum=True),
        "classic, for comparison": await _measure(procs.AMQP_URL, args.count, quorum=False),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
