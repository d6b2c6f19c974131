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
import math
import time
from dataclasses import dataclass, field

import uvloop
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bench import toolio
from bench.stats import summarize_ns
from shared import events
from shared.events import decode_event
from shared.names import Names


@dataclass
class Receipts:
    """What the subscriber saw: latencies of token events, or (probing) each event's arrival."""

    probe: bool
    latencies: list[int] = field(default_factory=list)
    arrivals: dict[str, int] = field(default_factory=dict)
    first_ns: int = 0
    last_ns: int = 0

    def record(self, data: bytes) -> None:
        now = time.monotonic_ns()
        event = decode_event(data)
        self.first_ns = self.first_ns or now
        self.last_ns = now
        if self.probe:
            self.arrivals[f"{event.job_id}:{event.seq}"] = now
        elif event.type == events.TOKEN:
            self.latencies.append(now - int(event.payload["content"]))


async def listen(pubsub: PubSub, receipts: Receipts) -> None:
    """The same loop as the gateway's fanout listener: each reply straight off the connection,
    blocking until it comes."""
    link = pubsub.connection
    assert link is not None
    while True:
        reply = await link.read_response(timeout=math.inf, push_request=True)
        if reply[0] == b"message":
            receipts.record(reply[2])
        elif reply[0] == b"pmessage":
            receipts.record(reply[3])


async def main() -> None:
    spec = toolio.spec()
    names = Names(spec["namespace"])
    receipts = Receipts(probe=bool(spec.get("probe", False)))
    stdin = await toolio.stdin_lines()
    # RESP2, as the gateway's client (shared/redis_client.py).
    redis = Redis.from_url(spec["redis_url"], protocol=2)
    pubsub = redis.pubsub()
    if receipts.probe:
        await pubsub.psubscribe(names.job_channel("*"))
    else:
        job_ids = toolio.read_job_ids(spec["job_ids_file"])
        await pubsub.subscribe(*(names.job_channel(job_id) for job_id in job_ids))
    # Drain the confirmations, so that "ready" means every channel is live.
    expected = 1 if receipts.probe else len(job_ids)
    while expected:
        message = await pubsub.get_message(timeout=5.0)
        if message is not None and message["type"] in ("subscribe", "psubscribe"):
            expected -= 1
    toolio.emit({"ready": True})
    cpu_before = time.process_time()
    listener = asyncio.create_task(listen(pubsub, receipts))
    await toolio.wait_for_stop(stdin, float(spec["timeout_s"]))
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    cpu_s = time.process_time() - cpu_before
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    await redis.aclose()
    report = {
        "received": len(receipts.arrivals) if receipts.probe else len(receipts.latencies),
        "latency": summarize_ns(receipts.latencies),
        "active_s": round((receipts.last_ns - receipts.first_ns) / 1e9, 3),
        "cpu_s": round(cpu_s, 3),
    }
    if receipts.probe:
        report["arrivals"] = receipts.arrivals
    toolio.emit(report)


if __name__ == "__main__":
    uvloop.run(main())
