"""Summaries of latency samples: the percentiles the report prints, in milliseconds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

PERCENTILES = {"p50": 50.0, "p99": 99.0, "p999": 99.9}


def percentile(ordered: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize_ns(samples_ns: Sequence[int]) -> dict[str, Any]:
    """Count, mean and percentiles (ms) of nanosecond samples."""
    if not samples_ns:
        return {"count": 0}
    ordered = sorted(samples_ns)
    summary: dict[str, Any] = {"count": len(ordered)}
    for name, pct in PERCENTILES.items():
        summary[f"{name}_ms"] = round(percentile(ordered, pct) / 1e6, 3)
    summary["max_ms"] = round(ordered[-1] / 1e6, 3)
    summary["mean_ms"] = round(sum(ordered) / len(ordered) / 1e6, 3)
    return summary
