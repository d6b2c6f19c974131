"""How big each measurement is: ``full`` for ``make bench`` (about six minutes on two cores),
``smoke`` for the test that keeps the harness from rotting (a few streams, a second or two)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scale:
    levels: tuple[int, ...]
    relay_rate: float
    relay_s: float
    # The relay through a Redis Cluster of 1 and of 3 shards: each shard's CPU is read in
    # 10 ms ticks, so a phase long enough that its share of the events costs many of them.
    cluster_relay_s: float
    throughput_streams: int
    throughput_s: float
    throughput_publishers: int
    sustained_rates: tuple[float, ...]
    ttft_chats: int
    idle_streams: int
    idle_hold_s: float
    idle_heartbeat_s: float
    echo_events_per_s: float
    echo_run_s: float
    chat_workers: tuple[int, ...]
    chat_s: float
    sustain_workers: int
    sustain_s: float
    chat_concurrency: int
    redis_channels: int
    redis_rates: tuple[float, ...]
    redis_s: float
    micro_ops: int
    # The job queue's ceiling: how long jobs are published, with how many awaiting confirms.
    queue_s: float
    queue_in_flight: int


FULL = Scale(
    levels=(100, 1000, 5000),
    relay_rate=2000,
    relay_s=6,
    cluster_relay_s=20,
    throughput_streams=1000,
    throughput_s=3,
    # Two publishers outrun the gateway but leave it too little of the two cores (see
    # docs/performance.md); on a bigger machine, raise this.
    throughput_publishers=1,
    # Offered rates, lowest first, for the most events/s the gateway keeps up with.
    sustained_rates=tuple(range(16_000, 30_001, 1_000)),
    ttft_chats=200,
    idle_streams=10_000,
    idle_hold_s=12,
    idle_heartbeat_s=5,
    echo_events_per_s=2000,
    echo_run_s=6,
    chat_workers=(1, 2, 4),
    chat_s=15,
    sustain_workers=2,
    sustain_s=60,
    chat_concurrency=32,
    redis_channels=100,
    redis_rates=(2000, 30_000),
    redis_s=4,
    micro_ops=50_000,
    queue_s=10,
    queue_in_flight=64,
)

SMOKE = Scale(
    levels=(4,),
    relay_rate=100,
    relay_s=1,
    cluster_relay_s=1,
    throughput_streams=4,
    throughput_s=0.3,
    throughput_publishers=2,
    sustained_rates=(100, 200),
    ttft_chats=3,
    idle_streams=10,
    idle_hold_s=1.5,
    idle_heartbeat_s=0.5,
    echo_events_per_s=40,
    echo_run_s=1,
    chat_workers=(1,),
    chat_s=1,
    sustain_workers=1,
    sustain_s=1,
    chat_concurrency=2,
    redis_channels=4,
    redis_rates=(100,),
    redis_s=0.5,
    micro_ops=500,
    queue_s=0.5,
    queue_in_flight=4,
)

SCALES = {"full": FULL, "smoke": SMOKE}
