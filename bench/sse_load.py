"""``python -m bench.sse_load``: the SSE load generator, in a process of its own.

Modes (``spec["mode"]``):

- ``streams``: open ``count`` chat streams (with ``"target": "nchan"``, EventSource subscriptions
  to as many nchan channels of random ids, the peer row: bench/nchan.py), report ``ready`` with
  their job ids (or channel ids), then read them
  until the runner says ``stop`` (or every stream ended), timing each event's arrival: against
  the publish time carried in a synthetic token (``"stamp": "payload"``), or recorded per
  ``job:seq`` to be joined with the Redis probe's arrival times (``"stamp": "arrivals"``).
- ``ttft``: one chat at a time, the time from sending the request to the first ``token``.
- ``chats``: a closed loop of short chats for ``duration_s``, each checked end to end.

The last two send each user's chats on one kept-alive connection
(:class:`bench.sse_raw.KeptConnection`). HTTP and SSE are parsed here by hand, on purpose: the
load generator must cost far less CPU than the gateway it measures, so it only splits frames and
reads the few fields it times.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench import sse_raw, toolio
from bench.stats import summarize_ns

STREAM_PATH = sse_raw.STREAM_PATH
TOKEN_MARK = b'"type":"token"'
HEARTBEAT_MARK = b'"type":"heartbeat"'
END_MARK, ERROR_MARK = b'"type":"end"', b'"type":"error"'


@dataclass
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    arrivals: dict[str, int] = field(default_factory=dict)
    events: int = 0
    heartbeats: int = 0
    first_ns: int = 0
    last_ns: int = 0


def tally_frames(tally: Tally, job_id: str, stamp: str, frames: list[bytes], now: int) -> bool:
    """Count one read's frames into ``tally``; True once the job's last event came."""
    for frame in frames:
        if not frame.startswith(b"id: "):
            if HEARTBEAT_MARK in frame:
                tally.heartbeats += 1
            continue
        tally.events += 1
        tally.first_ns = tally.first_ns or now
        tally.last_ns = now
        id_line, _, data = frame.partition(b"\ndata: ")
        if stamp == "arrivals":
            tally.arrivals[f"{job_id}:{int(id_line[4:])}"] = now
        elif TOKEN_MARK in data:
            tally.latencies_ns.append(now - int(json.loads(data)["content"]))
        if END_MARK in data or ERROR_MARK in data:
            return True
    return False


async def streams(spec: dict[str, Any]) -> dict[str, Any]:
    """One connection per stream (:class:`bench.sse_raw.RawStream`), held until ``stop``."""
    stdin = await toolio.stdin_lines()
    keys: list[str] = spec["keys"]
    count = int(spec["count"])
    stamp: str = spec["stamp"]
    gate = asyncio.Semaphore(int(spec.get("open_concurrency", 100)))
    tally = Tally()
    opened: list[sse_raw.RawStream] = []
    job_ids: list[str] = []
    open_errors: list[str] = []

    nchan = spec.get("target") == "nchan"

    def sink(stream: sse_raw.RawStream, frames: list[bytes], now: int) -> bool:
        # The first frames come in the same read as the headers, before the opener resumes.
        return tally_frames(tally, stream.job_id, stamp, frames, now)

    async def open_one(i: int) -> None:
        channel = uuid.uuid4().hex if nchan else ""
        request = (
            sse_raw.subscribe_request(spec["url"], channel)
            if nchan
            else sse_raw.chat_request(spec["url"], keys[i % len(keys)], spec["text"])
        )
        async with gate:
            try:
                stream = await sse_raw.open_raw_stream(spec["url"], request, sink, channel)
            except (OSError, RuntimeError) as e:
                open_errors.append(repr(e))
                return
        job_ids.append(stream.job_id)
        opened.append(stream)

    opened_at = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(count)))
    open_s = time.monotonic() - opened_at
    toolio.write_job_ids(spec["job_ids_file"], job_ids)
    toolio.emit({"ready": True, "opened": len(job_ids), "open_s": round(open_s, 3)})
    stop = asyncio.ensure_future(toolio.wait_for_stop(stdin, float(spec["timeout_s"])))
    ends = [stream.ended for stream in opened]
    waited: list[asyncio.Future[Any]] = [stop, *ends]
    await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    while not stop.done() and any(not end.done() for end in ends):
        await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    how = [end.result() if end.done() else "open" for end in ends]
    for stream in opened:
        stream.close()
    return {
        "opened": len(job_ids),
        "open_errors": len(open_errors),
        "open_error_sample": open_errors[:3],
        "open_errors_by_status": _by_status(open_errors),
        "open_s": round(open_s, 3),
        "still_open": how.count("open"),
        "events": tally.events,
        "heartbeats": tally.heartbeats,
        "ended": how.count(sse_raw.END),
        "failed": how.count(sse_raw.BROKEN),
        "active_s": round((tally.last_ns - tally.first_ns) / 1e9, 3),
        "latency": summarize_ns(tally.latencies_ns),
        **({"arrivals": tally.arrivals} if stamp == "arrivals" else {}),
    }


def _by_status(errors: list[str]) -> dict[str, int]:
    """How many opens failed with each HTTP status (or exception type, before any status)."""
    counts: dict[str, int] = {}
    for error in errors:
        if error.startswith("RuntimeError('"):
            key = error.removeprefix("RuntimeError('").split(":", 1)[0]
        else:
            key = error.split("(", 1)[0]
        counts[key] = counts.get(key, 0) + 1
    return counts


async def ttft(spec: dict[str, Any]) -> dict[str, Any]:
    samples: list[int] = []
    errors = 0
    request = sse_raw.chat_request(spec["url"], spec["keys"][0], spec["text"])
    connection: sse_raw.KeptConnection | None = None
    for i in range(int(spec["count"])):
        first_token: int | None = None

        def on_frames(frames: list[bytes], read_at_ns: int) -> None:
            nonlocal first_token
            if first_token is None and any(TOKEN_MARK in f for f in frames):
                first_token = read_at_ns

        try:
            if connection is None or not connection.reusable:
                connection = await sse_raw.KeptConnection.open(spec["url"])
            started = time.monotonic_ns()
            await connection.chat(request, on_frames)
        except (OSError, RuntimeError):
            errors += 1
            _closed(connection)
            connection = None
            continue
        if first_token is None:
            errors += 1
        else:
            samples.append(first_token - started)
        if i % 50 == 49:
            # Let the gateway's per-stream bookkeeping settle, as between real users.
            await asyncio.sleep(0.01)
    _closed(connection)
    return {"ttft": summarize_ns(samples), "errors": errors}


async def chats(spec: dict[str, Any]) -> dict[str, Any]:
    keys: list[str] = spec["keys"]
    text: str = spec["text"]
    deadline = time.monotonic() + float(spec["duration_s"])
    completed = 0
    errors: list[str] = []
    durations: list[int] = []

    async def one_user(i: int) -> None:
        nonlocal completed
        request = sse_raw.chat_request(spec["url"], keys[i % len(keys)], text)
        connection: sse_raw.KeptConnection | None = None
        while time.monotonic() < deadline:
            last_frame = b""

            def on_frames(frames: list[bytes], _read_at_ns: int) -> None:
                nonlocal last_frame
                last_frame = frames[-1]

            started = time.monotonic_ns()
            try:
                if connection is None or not connection.reusable:
                    connection = await sse_raw.KeptConnection.open(spec["url"])
                await connection.chat(request, on_frames)
            except (OSError, RuntimeError) as e:
                errors.append(repr(e))
                _closed(connection)
                connection = None
                continue
            last = last_frame.rsplit(b"\ndata: ", 1)[-1]
            end = json.loads(last) if last.startswith(b"{") else {}
            if end.get("type") == "end" and end.get("content") == text:
                completed += 1
                durations.append(time.monotonic_ns() - started)
            else:
                errors.append(f"unexpected last event: {last[:200]!r}")
        _closed(connection)

    started = time.monotonic()
    await asyncio.gather(*(one_user(i) for i in range(int(spec["concurrency"]))))
    elapsed_s = time.monotonic() - started
    return {
        "completed": completed,
        "errors": len(errors),
        "error_sample": errors[:3],
        "elapsed_s": round(elapsed_s, 3),
        "chats_per_s": round(completed / elapsed_s, 1),
        "chat_latency": summarize_ns(durations),
    }


def _closed(connection: sse_raw.KeptConnection | None) -> None:
    """Close ``connection`` (after an error it cannot carry another chat); a new one is opened
    for the next."""
    if connection is not None:
        connection.close()


MODES = {"streams": streams, "ttft": ttft, "chats": chats}


async def main() -> None:
    spec = toolio.spec()
    toolio.raise_fd_limit()
    toolio.emit(await MODES[spec["mode"]](spec))


if __name__ == "__main__":
    uvloop.run(main())
