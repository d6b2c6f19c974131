"""Each measurement the report prints: it starts what it measures, drives the load generators,
and returns a JSON-ready result. Every phase is bounded in time and count."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from bench import broker_hop, nchan, procs, toolio, usage
from bench import micro as relay_micro
from bench.procs import REDIS_URL, Stack, Tool, api_keys, new_namespace, purge_namespace
from bench.scale import Scale
from bench.stats import summarize_ns
from launcher.local_redis import LocalRedisCluster, running
from launcher.ports import HOST
from shared.names import Names

# Bounds on waiting for a load generator beyond the phase it runs.
READY_TIMEOUT_S = 120.0
DRAIN_S = 1.0
ECHO_WORKERS = 2
# A step of the sustained throughput is kept up with when every event arrived and this p99 held:
# a relay falling behind by even a tenth over the step's seconds queues far more than this.
KEPT_UP_P99_MS = 100.0
# A step counts only when the publisher offered at least this share of its rate (it publishes
# rate * duration events, the last of them late when it falls behind).
OFFERED_SHARE = 0.99
# How many times the offered rate is halved when not even the lowest is kept up with.
SLOWER_STEPS = 3
# The Redis Clusters the relay is measured through, by their number of primaries.
CLUSTER_SHARDS = (1, 3)
ECHO_RUNNING_JOBS = 100
# How much of a short-chats run ``--profile`` records.
CHATS_PROFILE_S = 10.0
# How much of the idle streams' opening storm ``--profile`` records (the hold: all of it).
IDLE_PROFILE_S = 20.0
TEN_WORDS = "the quick brown fox jumps over the lazy sleeping dog"


@dataclass
class Context:
    scale: Scale
    out_dir: Path
    profile: bool = False

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def stack(self, label: str, workers: int = 0, **env: str) -> Stack:
        return Stack(label=label, log_dir=self.out_dir, workers=workers, env=env)

    def tool(self, module: str, label: str, spec: dict[str, Any]) -> Tool:
        return Tool(module, {"redis_url": REDIS_URL, **spec}, self.path(f"{label}.log"))


def _client_spec(url: str, **spec: Any) -> dict[str, Any]:
    return {"url": url, "keys": list(api_keys()), "text": "bench", **spec}


async def _start_profile(
    ctx: Context, pid: int, duration_s: float, name: str
) -> asyncio.subprocess.Process | None:
    """With ``--profile``, py-spy recording ``pid`` for ``duration_s`` into
    ``<name>.speedscope.json``; else nothing."""
    if not ctx.profile:
        return None
    return await procs.profile(pid, duration_s, ctx.path(f"{name}.speedscope.json"))


async def _profile_written(profiler: asyncio.subprocess.Process | None) -> None:
    # py-spy stops by itself after its duration, and only then writes its profile.
    if profiler is not None:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await profiler.wait()


async def redis_limit(ctx: Context) -> dict[str, Any]:
    """The physical limit: a bare redis-py subscriber on the same channels, same events."""
    names = Names(new_namespace("redis"))
    results: dict[str, Any] = {"channels": ctx.scale.redis_channels, "rates": {}}
    try:
        for rate in (*ctx.scale.redis_rates, 0):
            # Fresh jobs per phase: each job's seq (the replay log's entry id) starts at 1.
            ids_file = ctx.path(f"redis-{int(rate)}-jobs.txt")
            ids = (uuid.uuid4().hex for _ in range(ctx.scale.redis_channels))
            ids_file.write_text("\n".join(ids))
            sub = ctx.tool(
                "bench.redis_sub",
                "redis-sub",
                {"namespace": names.namespace, "job_ids_file": str(ids_file), "timeout_s": 60},
            )
            await sub.start()
            try:
                await sub.read(READY_TIMEOUT_S)
                published = await _publish(
                    ctx, ids_file, rate, ctx.scale.redis_s, namespace=names.namespace
                )
                await asyncio.sleep(DRAIN_S)
                sub.tell("stop")
                received = await sub.read(READY_TIMEOUT_S)
            finally:
                await sub.close()
            key = "max" if rate == 0 else str(int(rate))
            results["rates"][key] = {"publisher": published, **received}
        best = results["rates"]["max"]
        results["max_events_per_s"] = round(best["received"] / max(best["active_s"], 1e-9))
    finally:
        await purge_namespace(names)
    return results


async def _publish(
    ctx: Context,
    ids_file: Path,
    rate: float,
    duration_s: float,
    *,
    processes: int = 1,
    module: str = "bench.publisher",
    **spec: Any,
) -> dict[str, Any]:
    """Publish for ``duration_s`` from ``processes`` publishers (``module``: chatstream's
    synthetic worker, or nchan's, with ``spec``), each with its share of the jobs (one Python
    publisher tops out below what a gateway delivers)."""
    job_ids = toolio.read_job_ids(str(ids_file))
    shares = [job_ids[i::processes] for i in range(processes) if job_ids[i::processes]]
    publishers = []
    for i, share in enumerate(shares):
        share_file = ids_file.with_suffix(f".{i}.txt")
        toolio.write_job_ids(str(share_file), share)
        publishers.append(
            ctx.tool(
                module,
                f"publisher-{i}",
                {
                    **spec,
                    "job_ids_file": str(share_file),
                    "rate": rate / len(shares),
                    "duration_s": duration_s,
                },
            )
        )
    try:
        for publisher in publishers:
            await publisher.start()
        reports = [await p.read(duration_s + READY_TIMEOUT_S) for p in publishers]
    finally:
        for publisher in publishers:
            await publisher.close()
    return {
        "processes": len(reports),
        "published": sum(r["published"] for r in reports),
        "elapsed_s": max(r["elapsed_s"] for r in reports),
        "rate": round(sum(r["rate"] for r in reports), 1),
        "cpu_s": round(sum(r["cpu_s"] for r in reports), 3),
        # Publishes nchan's publisher endpoint did not take (chatstream's: always none).
        "refused": sum(r.get("refused", 0) for r in reports),
        "shards": _merged_spread(reports),
    }


def _merged_spread(reports: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per shard, the jobs and events of every publisher (chatstream's synthetic worker)."""
    merged: dict[str, dict[str, int]] = {}
    for report in reports:
        for address, counts in report.get("shards", {}).items():
            total = merged.setdefault(address, dict.fromkeys(counts, 0))
            for name, count in counts.items():
                total[name] += count
    return merged


@dataclass
class RelayTarget:
    """What a relay phase measures: one chatstream gateway, or the nchan peer (its nginx,
    ``bench/nchan.py``), fed by the publisher ``publisher`` with ``publish_spec``. ``server``
    names the CPU figure (``<server>_cpu_s_per_1000_events``); ``redis_pids`` is the Redis whose
    CPU the phase reports (None: every redis-server on the machine, the shared one's included);
    ``cpu_groups`` are more processes whose CPU it reports, by name (a cluster's shards)."""

    label: str
    server: str
    url: str
    pids: list[int]
    publish_spec: dict[str, Any]
    publisher: str = "bench.publisher"
    client_spec: dict[str, Any] = field(default_factory=dict)
    redis_pids: list[int] | None = None
    cpu_groups: dict[str, list[int]] = field(default_factory=dict)
    # py-spy records Python: the gateway, not nginx.
    profile: bool = True

    @property
    def cpu_key(self) -> str:
        return f"{self.server}_cpu_s_per_1000_events"


def _gateway_target(stack: Stack) -> RelayTarget:
    return RelayTarget(
        label="relay",
        server="gateway",
        url=stack.url,
        pids=stack.pids()["gateway"],
        publish_spec={"namespace": stack.namespace},
    )


async def synthetic_relay(ctx: Context) -> dict[str, Any]:
    """Relay latency at each concurrency (2,000 events/s in all), then the most events/s one
    gateway delivers, with synthetic events published straight into Redis: with the publisher
    flat out (overloaded), and the highest offered rate it keeps up with (sustained)."""
    stack = ctx.stack("relay")
    await stack.start()
    try:
        target = _gateway_target(stack)
        results: dict[str, Any] = {"latency": await _latencies(ctx, target)}
        throughput = await _relay_phase(
            ctx,
            target,
            ctx.scale.throughput_streams,
            0,
            ctx.scale.throughput_s,
            publishers=ctx.scale.throughput_publishers,
        )
        per_1000 = throughput["gateway_cpu_s_per_1000_events"]
        results["throughput"] = {
            **throughput,
            "delivered_events_per_s": _delivered_per_s(throughput),
            "gateway_cpu_s_per_1000_events": per_1000,
            # What one gateway process would deliver with a whole core to itself: on two shared
            # cores the publisher, the client and Redis take the rest, so this is the ceiling.
            "events_per_s_at_one_core": round(1000 / per_1000) if per_1000 else None,
        }
        results["sustained"] = await _sustained(ctx, target)
    finally:
        await stack.stop()
    return results


async def nchan_peer(ctx: Context) -> dict[str, Any]:
    """The peer row: nchan (bench/nchan.py) measured as ``synthetic_relay`` measures the
    gateway, by the same load client and publishing loop at the same rates: relay latency at each
    concurrency and the highest rate delivered as offered. Where nchan is not installed, it is
    skipped with the reason, and the run goes on."""
    reason = nchan.unavailable()
    if reason is not None:
        print(f"bench: nchan_peer skipped: {reason}", flush=True)
        return {"skipped": reason}
    server = nchan.NchanServer(ctx.path("nchan"))
    await server.start()
    try:
        target = RelayTarget(
            label="nchan",
            server="nginx",
            url=server.url,
            pids=server.pids(),
            publisher="bench.nchan_publisher",
            publish_spec={"url": server.url},
            client_spec={"target": "nchan"},
            redis_pids=server.redis_pids(),
            profile=False,
        )
        results: dict[str, Any] = {"nginx_processes": len(target.pids)}
        results["latency"] = await _latencies(ctx, target)
        results["sustained"] = await _sustained(ctx, target)
    finally:
        await server.stop()
    return results


async def cluster_relay(ctx: Context) -> dict[str, Any]:
    """The relay through a Redis Cluster of 1 and of 3 primaries (no replicas), each started for
    it in the run's folder: one gateway on it, the middle concurrency's streams, ``relay_rate``
    events/s published by the synthetic worker to each job's shard. Per cluster, what the
    gateway delivered, at what latency and CPU, and per shard its share of the jobs and events
    and its CPU per 1,000 of the events it carried. Two cores cannot show shards adding speed;
    what a shard costs, and how evenly the jobs spread, is what capacity is reckoned from."""
    streams = ctx.scale.levels[len(ctx.scale.levels) // 2]
    results: dict[str, Any] = {}
    for shards in CLUSTER_SHARDS:
        cluster = LocalRedisCluster(ctx.path(f"cluster-{shards}"), primaries=shards, replicas=0)
        # Its start blocks for the second or two the servers take: nothing else runs meanwhile.
        with running(cluster):
            results[str(shards)] = await _cluster_phase(ctx, cluster, streams)
    return {
        "streams": streams,
        "rate": ctx.scale.relay_rate,
        "shards": results,
        "summary": _cluster_summary(results),
    }


async def _cluster_phase(ctx: Context, cluster: LocalRedisCluster, streams: int) -> dict[str, Any]:
    stack = ctx.stack(f"cluster-{cluster.primaries}", REDIS_CLUSTER_NODES=cluster.nodes)
    await stack.start()
    try:
        idle = await _idle_cpu_s_per_s(cluster, ctx.scale.relay_s)
        # No replicas: each server is a primary, a shard.
        shard_pids: dict[str, list[int]] = {}
        for server in cluster.servers:
            assert server.process is not None
            shard_pids[server.address] = [server.process.pid]
        target = dataclasses.replace(
            _gateway_target(stack),
            label=f"cluster-{cluster.primaries}",
            publish_spec={"namespace": stack.namespace, "cluster_nodes": cluster.nodes},
            redis_pids=[pid for pids in shard_pids.values() for pid in pids],
            cpu_groups=shard_pids,
        )
        phase = await _relay_phase(
            ctx, target, streams, ctx.scale.relay_rate, ctx.scale.cluster_relay_s
        )
    finally:
        await stack.stop()
    published = phase["publisher"]["published"]
    cpu = phase["cpu_s"] or {}
    by_shard = {
        address: {
            **counts,
            "events_share": _ratio(counts["events"], published),
            "events_per_write": _ratio(counts["events"], counts["writes"]),
            "cpu_s": cpu.get(address),
            "cpu_s_per_1000_events": _per_1000(cpu.get(address), counts["events"]),
            # CPU-seconds per 1,000 writes: CPU-ms per write.
            "cpu_ms_per_write": _per_1000(cpu.get(address), counts["writes"]),
            "idle_cpu_s_per_s": idle[address],
        }
        for address, counts in phase["publisher"]["shards"].items()
    }
    return {
        **phase,
        "delivered_events_per_s": _delivered_per_s(phase),
        # Redis works for each event published, delivered or not.
        "redis_cpu_s_per_1000_events": _per_1000(cpu.get("redis"), published),
        "redis_cpu_ms_per_write": _per_1000(
            cpu.get("redis"), sum(shard["writes"] for shard in by_shard.values())
        ),
        "by_shard": by_shard,
    }


async def _idle_cpu_s_per_s(cluster: LocalRedisCluster, duration_s: float) -> dict[str, float]:
    """Each shard's CPU-s per second with the gateway's links open and nothing published: its
    timers and the cluster bus, whatever the load. Read from Redis's own count (INFO cpu, to
    the microsecond): a few hundredths of a second are too fine for the 10 ms ticks that the
    figures under load are read in."""
    clients = {server.address: Redis(host=HOST, port=server.port) for server in cluster.servers}
    try:
        before = {address: await _cpu_s(client) for address, client in clients.items()}
        await asyncio.sleep(duration_s)
        return {
            address: round((await _cpu_s(client) - before[address]) / duration_s, 5)
            for address, client in clients.items()
        }
    finally:
        for client in clients.values():
            await client.aclose()


async def _cpu_s(redis: Redis) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def _cluster_summary(results: dict[str, Any]) -> dict[str, Any]:
    """1 shard against 3: all the shards' CPU per 1,000 events and per write, and each one's
    share of the events."""
    summary = {
        figure: {shards: phase[figure] for shards, phase in results.items()}
        for figure in ("redis_cpu_s_per_1000_events", "redis_cpu_ms_per_write")
    }
    summary["events_share_by_shard"] = {
        shards: [shard["events_share"] for shard in phase["by_shard"].values()]
        for shards, phase in results.items()
    }
    return summary


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _per_1000(cpu_s: float | None, events: int) -> float | None:
    return round(cpu_s / events * 1000, 4) if cpu_s is not None and events else None


async def _latencies(ctx: Context, target: RelayTarget) -> dict[str, Any]:
    """Relay latency at each concurrency, ``relay_rate`` events/s in all."""
    return {
        str(streams): await _relay_phase(
            ctx, target, streams, ctx.scale.relay_rate, ctx.scale.relay_s
        )
        for streams in ctx.scale.levels
    }


async def _sustained(ctx: Context, target: RelayTarget) -> dict[str, Any]:
    """The highest rate delivered as offered, on fresh streams at each rate."""

    async def measure(rate: float) -> dict[str, Any]:
        return await _sustained_step(ctx, target, rate)

    found = await search_sustained_rate(ctx.scale.sustained_rates, measure)
    return {"streams": ctx.scale.throughput_streams, **found}


async def search_sustained_rate(
    rates: Sequence[float], measure: Callable[[float], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Offer each rate in turn, lowest first, until one is not kept up with (see
    ``KEPT_UP_P99_MS``). A publisher flat out takes CPU the gateway then lacks on two shared
    cores, and its backlog is delivered late; this is the rate that is delivered as offered.
    When not even the lowest is kept up with (a slow day), half of it is offered, and so on
    (``SLOWER_STEPS`` times at most), so that the figure still says what the machine keeps up
    with rather than 0. ``measure(rate)`` runs one step: ``kept_up`` and
    ``delivered_events_per_s``."""
    steps: dict[str, Any] = {}
    best = 0
    higher = iter(rates[1:])
    rate: float | None = rates[0]
    slower_left = SLOWER_STEPS
    while rate is not None:
        step = await measure(rate)
        steps[str(int(rate))] = step
        if step["kept_up"]:
            best = max(best, step["delivered_events_per_s"])
            # Going down, the first rate kept up with is the figure; going up, try the next.
            rate = next(higher, None) if slower_left == SLOWER_STEPS else None
        elif best == 0 and slower_left > 0:
            slower_left -= 1
            rate /= 2
        else:
            rate = None
    return {"steps": steps, "delivered_events_per_s": best}


async def _sustained_step(ctx: Context, target: RelayTarget, rate: float) -> dict[str, Any]:
    phase = await _relay_phase(
        ctx, target, ctx.scale.throughput_streams, rate, ctx.scale.throughput_s
    )
    latency = phase["client"]["latency"]
    return {
        "kept_up": (
            phase["client"]["events"] == phase["publisher"]["published"]
            and latency.get("p99_ms", 0) <= KEPT_UP_P99_MS
            # The publisher, not the gateway, fell behind: the rate was never offered.
            and phase["publisher"]["rate"] >= rate * OFFERED_SHARE
        ),
        "delivered_events_per_s": _delivered_per_s(phase),
        target.cpu_key: phase[target.cpu_key],
        "latency": latency,
        "cpu_s": phase["cpu_s"],
        "publisher": phase["publisher"],
    }


def _delivered_per_s(phase: dict[str, Any]) -> int:
    """Events the client received over the span from the first arrival to the last."""
    events: int = phase["client"]["events"]
    active_s: float = phase["client"]["active_s"]
    return round(events / max(active_s, 1e-9))


async def _relay_phase(
    ctx: Context,
    target: RelayTarget,
    streams: int,
    rate: float,
    duration_s: float,
    *,
    publishers: int = 1,
) -> dict[str, Any]:
    label = f"{target.label}-{streams}-{int(rate)}"
    ids_file = ctx.path(f"{label}-jobs.txt")
    client = ctx.tool(
        "bench.sse_load",
        f"client-{label}",
        _client_spec(
            target.url,
            **target.client_spec,
            mode="streams",
            count=streams,
            stamp="payload",
            job_ids_file=str(ids_file),
            timeout_s=duration_s + READY_TIMEOUT_S,
        ),
    )
    await client.start()
    try:
        ready = await client.read(READY_TIMEOUT_S)
        assert client.process is not None
        redis = target.redis_pids
        groups = {
            target.server: target.pids,
            "client": [client.process.pid],
            "redis": usage.server_pids().get("redis", []) if redis is None else redis,
            **target.cpu_groups,
        }
        before = usage.cpu_seconds(groups)
        machine_before = usage.machine_busy_seconds()
        profiled = ctx if target.profile else dataclasses.replace(ctx, profile=False)
        profiler = await _start_profile(profiled, target.pids[0], duration_s, label)
        published = await _publish(
            ctx,
            ids_file,
            rate,
            duration_s,
            processes=publishers,
            module=target.publisher,
            **target.publish_spec,
        )
        await _profile_written(profiler)
        await asyncio.sleep(DRAIN_S)
        after = usage.cpu_seconds(groups)
        machine_after = usage.machine_busy_seconds()
        client.tell("stop")
        received = await client.read(READY_TIMEOUT_S)
    finally:
        await client.close()
    cpu = usage.cpu_delta(before, after)
    if cpu is not None and machine_before is not None and machine_after is not None:
        # Everything the machine ran meanwhile: what is left after ours is other work.
        cpu["machine"] = round(machine_after - machine_before, 3)
    delivered = received["events"]
    return {
        "streams": streams,
        "rate": rate,
        target.cpu_key: _per_1000(cpu[target.server] if cpu else None, delivered),
        "open": ready,
        "publisher": published,
        "client": received,
        "cpu_s": cpu,
    }


async def idle_streams(ctx: Context) -> dict[str, Any]:
    """Idle SSE connections (waiting for a job no worker takes) held by one gateway, with
    heartbeats flowing, and the gateway's memory per connection; then the same load on a bare
    aiohttp SSE handler (``bench.bare_sse``), the limit of that memory."""
    heartbeat_s = ctx.scale.idle_heartbeat_s
    stack = ctx.stack("idle", HEARTBEAT_INTERVAL_S=str(heartbeat_s))
    await stack.start()
    try:
        result = await _hold_idle_streams(ctx, stack.url, stack.pids()["gateway"][0], "idle")
    finally:
        await stack.stop()
    bare = procs.HelperServer(
        "bench.bare_sse", ctx.path("idle-bare-server.log"), (str(heartbeat_s),)
    )
    await bare.start()
    try:
        assert bare.process is not None
        result["bare_aiohttp"] = await _hold_idle_streams(
            ctx, bare.url, bare.process.pid, "idle-bare", profile=False
        )
    finally:
        await bare.stop()
    return result


async def _hold_idle_streams(
    ctx: Context, url: str, server_pid: int, label: str, *, profile: bool = True
) -> dict[str, Any]:
    """Open ``idle_streams`` streams on the server at ``url``, hold them, and measure the
    server's memory (RSS growth from before the first open) and CPU."""
    rss_before = usage.rss_bytes(server_pid)
    client = ctx.tool(
        "bench.sse_load",
        f"client-{label}",
        _client_spec(
            url,
            mode="streams",
            count=ctx.scale.idle_streams,
            stamp="payload",
            open_concurrency=200,
            job_ids_file=str(ctx.path(f"{label}-jobs.txt")),
            timeout_s=ctx.scale.idle_hold_s + READY_TIMEOUT_S,
        ),
    )
    profiled = ctx if profile else dataclasses.replace(ctx, profile=False)
    await client.start()
    try:
        cpu_at_start = usage.cpu_seconds({"server": [server_pid]})
        profiler = await _start_profile(profiled, server_pid, IDLE_PROFILE_S, f"{label}-opening")
        ready = await client.read(READY_TIMEOUT_S)
        await _profile_written(profiler)
        cpu_at_ready = usage.cpu_seconds({"server": [server_pid]})
        profiler = await _start_profile(
            profiled, server_pid, ctx.scale.idle_hold_s - 2, f"{label}-holding"
        )
        await asyncio.sleep(ctx.scale.idle_hold_s)
        cpu_at_end = usage.cpu_seconds({"server": [server_pid]})
        rss_after = usage.rss_bytes(server_pid)
        await _profile_written(profiler)
        client.tell("stop")
        received = await client.read(READY_TIMEOUT_S)
    finally:
        await client.close()
    opening_cpu = usage.cpu_delta(cpu_at_start, cpu_at_ready)
    holding_cpu = usage.cpu_delta(cpu_at_ready, cpu_at_end)
    per_connection = (
        round((rss_after - rss_before) / ready["opened"])
        if rss_after is not None and rss_before is not None and ready["opened"]
        else None
    )
    return {
        "streams": ctx.scale.idle_streams,
        "held": received["still_open"],
        "heartbeat_s": ctx.scale.idle_heartbeat_s,
        "hold_s": ctx.scale.idle_hold_s,
        "open": ready,
        "client": received,
        "gateway_rss_before_bytes": rss_before,
        "gateway_rss_after_bytes": rss_after,
        "bytes_per_connection": per_connection,
        # The server's CPU-seconds while the streams opened, and over the hold that followed.
        "gateway_cpu_s_opening": opening_cpu and opening_cpu["server"],
        "gateway_cpu_s_holding": holding_cpu and holding_cpu["server"],
    }


async def time_to_first_token(ctx: Context) -> dict[str, Any]:
    """Request to first ``token``, one chat at a time, ``echo`` with no delay."""
    stack = ctx.stack("ttft", workers=1, ECHO_TOKEN_DELAY_MS="0")
    await stack.start()
    try:
        client = ctx.tool(
            "bench.sse_load",
            "client-ttft",
            _client_spec(stack.url, mode="ttft", count=ctx.scale.ttft_chats, text=TEN_WORDS),
        )
        await client.start()
        try:
            return await client.read(READY_TIMEOUT_S + ctx.scale.ttft_chats)
        finally:
            await client.close()
    finally:
        await stack.stop()


async def echo_relay(ctx: Context) -> dict[str, Any]:
    """Relay latency through real workers: each event's arrival at a Redis subscriber (the probe)
    joined with its arrival at the client. The echo delay spreads the tokens so that all the
    streams together produce about ``echo_events_per_s``."""
    results: dict[str, Any] = {}
    for streams in ctx.scale.levels:
        # Jobs running at once: more than about 50 per worker process exhausts its Redis
        # connection pool (see docs/performance.md); the other streams wait in the queue.
        running = min(streams, ECHO_RUNNING_JOBS)
        delay_s = running / ctx.scale.echo_events_per_s
        words = max(3, min(10, int(ctx.scale.echo_run_s * running / streams / delay_s)))
        text = " ".join(TEN_WORDS.split()[:words])
        stack = ctx.stack(
            f"echo-{streams}",
            workers=ECHO_WORKERS,
            ECHO_TOKEN_DELAY_MS=str(round(delay_s * 1000)),
            WORKER_CONCURRENCY=str(max(1, running // ECHO_WORKERS)),
        )
        await stack.start()
        try:
            results[str(streams)] = await _echo_phase(ctx, stack, streams, text, delay_s)
        finally:
            await stack.stop()
    return results


async def _echo_phase(
    ctx: Context, stack: Stack, streams: int, text: str, delay_s: float
) -> dict[str, Any]:
    probe = ctx.tool(
        "bench.redis_sub",
        f"probe-{streams}",
        {"namespace": stack.namespace, "probe": True, "timeout_s": READY_TIMEOUT_S * 2},
    )
    await probe.start()
    try:
        await probe.read(READY_TIMEOUT_S)
        client = ctx.tool(
            "bench.sse_load",
            f"client-echo-{streams}",
            _client_spec(
                stack.url,
                mode="streams",
                count=streams,
                text=text,
                stamp="arrivals",
                job_ids_file=str(ctx.path(f"echo-{streams}-jobs.txt")),
                timeout_s=READY_TIMEOUT_S,
            ),
        )
        # The phase's jobs run from the streams' opening to their end: what the processes spend
        # meanwhile is the cost of these events (each token its own round trip, as a model's
        # tokens are, spread by the echo delay).
        before = usage.cpu_seconds(stack.pids())
        await client.start()
        try:
            ready = await client.read(READY_TIMEOUT_S)
            received = await client.read(READY_TIMEOUT_S)
        finally:
            await client.close()
        cpu = usage.cpu_delta(before, usage.cpu_seconds(stack.pids()))
        probe.tell("stop")
        probed = await probe.read(READY_TIMEOUT_S)
    finally:
        await probe.close()
    events = probed["received"]
    at_redis: dict[str, int] = probed.pop("arrivals")
    at_client: dict[str, int] = received.pop("arrivals")
    latencies = [t - at_redis[key] for key, t in at_client.items() if key in at_redis]
    return {
        "streams": streams,
        "words": len(text.split()),
        "token_delay_ms": round(delay_s * 1000),
        "open": ready,
        "client": received,
        "probe_received": events,
        "latency": summarize_ns(latencies),
        "cpu_s": cpu,
        **{
            f"{part}_cpu_s_per_1000_events": round(spent / events * 1000, 4)
            for part, spent in (cpu or {}).items()
            if events
        },
    }


async def short_chats(ctx: Context) -> dict[str, Any]:
    """Short chats (``echo``, ten words, no delay) completed per second end to end, with 1, 2
    and 4 workers, and the CPU each part of the system spent per chat."""
    results: dict[str, Any] = {}
    for workers in ctx.scale.chat_workers:
        duration_s = (
            ctx.scale.sustain_s if workers == ctx.scale.sustain_workers else ctx.scale.chat_s
        )
        stack = ctx.stack(f"chats-{workers}", workers=workers, ECHO_TOKEN_DELAY_MS="0")
        await stack.start()
        try:
            client = ctx.tool(
                "bench.sse_load",
                f"client-chats-{workers}",
                _client_spec(
                    stack.url,
                    mode="chats",
                    text=TEN_WORDS,
                    concurrency=ctx.scale.chat_concurrency,
                    duration_s=duration_s,
                ),
            )
            await client.start()
            assert client.process is not None
            groups = {**stack.pids(), **usage.server_pids(), "client": [client.process.pid]}
            before = usage.cpu_seconds(groups)
            # The gateway and one worker, over the first seconds of the run.
            profilers = [
                await _start_profile(
                    ctx, groups[part][0], CHATS_PROFILE_S, f"chats-{workers}-{part}"
                )
                for part in ("gateway", "worker")
            ]
            try:
                report = await client.read(duration_s + READY_TIMEOUT_S)
            finally:
                after = usage.cpu_seconds(groups)
                await client.close()
                for profiler in profilers:
                    await _profile_written(profiler)
        finally:
            await stack.stop()
        cpu = usage.cpu_delta(before, after)
        completed = report["completed"]
        report["cpu_ms_per_chat"] = (
            {group: round(s / completed * 1000, 3) for group, s in cpu.items()}
            if cpu and completed
            else None
        )
        report["workers"] = workers
        results[str(workers)] = report
    return results


async def micro(ctx: Context) -> dict[str, Any]:
    """The relay's hot path timed in-process (see bench/micro.py)."""
    return await relay_micro.run_all(ctx.scale.micro_ops)


async def queue_ceiling(ctx: Context) -> dict[str, Any]:
    """Jobs per second through one job queue, and the broker's CPU per job (see
    bench/broker_hop.py)."""
    return await broker_hop.ceiling(procs.AMQP_URL, ctx.scale.queue_s, ctx.scale.queue_in_flight)


SCENARIOS = {
    "micro": micro,
    "redis_limit": redis_limit,
    "synthetic_relay": synthetic_relay,
    # Right after the relay it is set against, so that both see the machine at nearly one time.
    "nchan_peer": nchan_peer,
    "cluster_relay": cluster_relay,
    "time_to_first_token": time_to_first_token,
    "idle_streams": idle_streams,
    "echo_relay": echo_relay,
    "short_chats": short_chats,
    "queue_ceiling": queue_ceiling,
}
