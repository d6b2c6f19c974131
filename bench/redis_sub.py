"""``python -m bench.redis_sub``: a bare Redis pub/sub subscriber (redis-py with hiredis, one
connection), the physical limit the gateway is compared with. It subscribes to the same job
channels and decodes the same events as the gateway, then measures the same latency.

With ``"probe": true`` it instead pattern-subscribes to every job channel of a namespace and
records when each event arrived, so that the latency of events published by real workers (whose
payloads carry no timestamp) can be joined with the client's receipt times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import uvloop
from redis.asyncio import Redis

from bench import toolio
from bench.stats import summarize_ns
from shared import events
from shared.names import Names
from shared.wire import decode_event


async def main() -> None:
    spec = toolio.spec()
    names = Names(spec["namespace"])
    probe = bool(spec.get("probe", False))
    stdin = await toolio.stdin_lines()
    redis = Redis.from_url(spec["redis_url"])
    pubsub = redis.pubsub()
    if probe:
        await pubsub.psubscribe(names.job_channel("*"))
    else:
        job_ids = toolio.read_job_ids(spec["job_ids_file"])
        await pubsub.subscribe(*(names.job_channel(job_id) for job_id in job_ids))
    # Drain the confirmations, so that "ready" means every channel is live.
    expected = 1 if probe else len(job_ids)
    while expected:
        message = await pubsub.get_message(timeout=5.0)
        if message is not None and message["type"] in ("subscribe", "psubscribe"):
            expected -= 1
    toolio.emit({"ready": True})
    latencies: list[int] = []
    arrivals: dict[str, int] = {}
    span_ns = [0, 0]

    async def listen() -> None:
        # The same loop as the gateway's fanout listener: block on the next message.
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message["type"] not in ("message", "pmessage"):
                continue
            now = time.monotonic_ns()
            event = decode_event(message["data"])
            span_ns[0] = span_ns[0] or now
            span_ns[1] = now
            if probe:
                arrivals[f"{event.job_id}:{event.seq}"] = now
            elif event.type == events.TOKEN:
                latencies.append(now - int(event.payload["content"]))

    cpu_before = time.process_time()
    listener = asyncio.create_task(listen())
    await toolio.wait_for_stop(stdin, float(spec["timeout_s"]))
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    first_ns, last_ns = span_ns
    cpu_s = time.process_time() - cpu_before
    await pubsub.aclose()
    await redis.aclose()
    report = {
        "received": len(arrivals) if probe else len(latencies),
        "latency": summarize_ns(latencies),
        "active_s": round((last_ns - first_ns) / 1e9, 3),
        "cpu_s": round(cpu_s, 3),
    }
    if probe:
        report["arrivals"] = arrivals
    toolio.emit(report)


if __name__ == "__main__":
    uvloop.run(main())
