"""``python -m bench.idle_memory``: a gateway's memory per idle stream, quicker than the full
``idle_streams`` phase and with attribution.

- ``rss``: a gateway process (as ``make bench`` starts it); its RSS growth over ``--streams``
  idle streams, opened after a warm-up batch so one-time allocations do not count.
- ``trace``: the gateway in this process under tracemalloc; the bytes still allocated per
  stream, by file and line (``--group``), after the same warm-up.

Both hold the streams over a few heartbeats first, so the heartbeat path's memory is counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web

from bench import procs, toolio, usage
from bench.procs import Stack, Tool, api_keys
from launcher.ports import free_port

REPO_ROOT = str(Path(__file__).resolve().parents[1])
WARMUP_STREAMS = 100
HEARTBEAT_S = 5.0
# Under tracemalloc, long enough that no heartbeat is in flight at the snapshot.
TRACE_HEARTBEAT_S = 120.0
HOLD_S = 6.0


def _client(url: str, count: int, out: Path, label: str) -> Tool:
    spec: dict[str, Any] = {
        "url": url,
        "keys": list(api_keys()),
        "text": "bench",
        "mode": "streams",
        "count": count,
        "stamp": "payload",
        "open_concurrency": 100,
        "job_ids_file": str(out / f"{label}-jobs.txt"),
        "timeout_s": 600,
        "redis_url": procs.REDIS_URL,
    }
    return Tool("bench.sse_load", spec, out / f"{label}.log")


async def _open(url: str, count: int, out: Path, label: str) -> tuple[Tool, int]:
    """The client holding the streams, and how many it opened."""
    client = _client(url, count, out, label)
    await client.start()
    ready = await client.read(600)
    opened: int = ready["opened"]
    return client, opened


async def rss(streams: int, out: Path) -> None:
    toolio.cancel_on_signals()
    stack = Stack("idle-memory", out, env={"HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S)})
    clients: list[Tool] = []
    try:
        await stack.start()
        pid = stack.pids()["gateway"][0]
        clients.append((await _open(stack.url, WARMUP_STREAMS, out, "warmup"))[0])
        await asyncio.sleep(HOLD_S)
        before = usage.rss_bytes(pid)
        client, streams = await _open(stack.url, streams, out, "idle")
        clients.append(client)
        await asyncio.sleep(HOLD_S)
        after = usage.rss_bytes(pid)
        assert before is not None and after is not None
        print(
            f"RSS per stream over {streams} streams: {(after - before) / streams:,.0f} bytes",
            file=sys.stderr,
        )
    finally:
        try:
            for client in clients:
                await client.close()
        finally:
            await stack.stop()


async def trace(streams: int, out: Path, group: str, top: int) -> None:
    toolio.cancel_on_signals()
    stack = Stack("idle-memory", out)
    stack.namespace = procs.new_namespace("idle-memory")
    stack.port = free_port()
    env = {**stack.base_env(), "GATEWAY_PORT": str(stack.port)}
    env["HEARTBEAT_INTERVAL_S"] = str(TRACE_HEARTBEAT_S)
    # Under tracemalloc everything is slower: the publish confirm must not time out.
    env["CONNECT_TIMEOUT_S"] = "30"
    env["CONFIRM_TIMEOUT_S"] = "30"
    os.environ.update(env)
    # Imported once the environment is set, as `python -m gateway` would see it.
    from gateway.app import create_app
    from shared.logging import configure_logging
    from shared.settings import GatewaySettings, LoggingSettings

    configure_logging("gateway", LoggingSettings(level="WARNING", format="json"))
    settings = GatewaySettings.from_env()
    runner = web.AppRunner(create_app(settings), access_log=None, handler_cancellation=True)
    clients: list[Tool] = []
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", stack.port).start()
        clients.append((await _open(stack.url, WARMUP_STREAMS, out, "warmup"))[0])
        await asyncio.sleep(HOLD_S)
        tracemalloc.start(12)
        gc.collect()
        before = tracemalloc.take_snapshot()
        client, streams = await _open(stack.url, streams, out, "idle")
        clients.append(client)
        await asyncio.sleep(HOLD_S)
        gc.collect()
        after = tracemalloc.take_snapshot()
        _report(before, after, streams, group, top)
    finally:
        try:
            for client in clients:
                await client.close()
            await runner.cleanup()
        finally:
            await procs.purge_namespace(stack.names)


def _report(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, streams: int, group: str, top: int
) -> None:
    # Attribute each allocation to the innermost frame outside the standard library and site
    # packages that are not aiohttp, so a dict made for chatstream counts as chatstream's.
    stats = after.compare_to(before, "traceback")
    by_place: dict[str, int] = {}
    total = 0
    for stat in stats:
        total += stat.size_diff
        place = _place(stat.traceback, group)
        by_place[place] = by_place.get(place, 0) + stat.size_diff
    print(
        f"traced per stream over {streams} streams: {total / streams:,.0f} bytes", file=sys.stderr
    )
    ranked = sorted(by_place.items(), key=lambda item: -item[1])
    for place, size in ranked[:top]:
        print(f"  {size / streams:8,.0f}  {place}", file=sys.stderr)


def _place(traceback: tracemalloc.Traceback, group: str) -> str:
    frames = list(traceback)  # most recent call last
    for frame in reversed(frames):
        name = frame.filename
        if "/gateway/" in name or "/shared/" in name or "/aiohttp/" in name:
            where = name.removeprefix(f"{REPO_ROOT}/").split("site-packages/")[-1]
            return where if group == "file" else f"{where}:{frame.lineno}"
    frame = frames[-1]
    return f"{frame.filename.split('/')[-1]}:{frame.lineno}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["rss", "trace"])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--group", choices=["file", "line"], default="line")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path("bench-results/idle-memory"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    toolio.raise_fd_limit()
    try:
        if args.mode == "rss":
            uvloop.run(rss(args.streams, args.out))
        else:
            uvloop.run(trace(args.streams, args.out, args.group, args.top))
    except asyncio.CancelledError:
        sys.exit("stopped by a signal; what it started is stopped and its namespace purged")


if __name__ == "__main__":
    main()
