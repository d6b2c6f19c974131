"""The order in which the throughput phase offers rates: up from the lowest until one is not
kept up with, or, when not even the lowest is, down by halves until one is (pure logic: each
step's measurement is stood in for by what a gateway with a given capacity would show)."""

from __future__ import annotations

from typing import Any

from bench import scenarios
from bench.scale import FULL


async def offered(capacity: float) -> tuple[list[int], int]:
    """The rates offered to a gateway that keeps up with ``capacity`` events/s, and the
    phase's figure."""

    async def measure(rate: float) -> dict[str, Any]:
        return {"kept_up": rate <= capacity, "delivered_events_per_s": int(min(rate, capacity))}

    result = await scenarios.search_sustained_rate(FULL.sustained_rates, measure)
    return [int(rate) for rate in result["steps"]], result["delivered_events_per_s"]


async def test_rates_go_up_until_one_is_not_kept_up_with() -> None:
    assert await offered(18_500) == (
        [16_000, 17_000, 18_000, 19_000],
        18_000,
    )
    assert await offered(99_000) == (
        list(range(16_000, 30_001, 1_000)),
        30_000,
    )


async def test_a_slow_machine_is_offered_halves_until_it_keeps_up() -> None:
    assert await offered(9_000) == ([16_000, 8_000], 8_000)
    assert await offered(3_000) == ([16_000, 8_000, 4_000, 2_000], 2_000)
    # Three halvings at most.
    assert await offered(1_000) == ([16_000, 8_000, 4_000, 2_000], 0)
