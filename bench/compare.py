"""``python -m bench.compare BEFORE_DIR AFTER_DIR``: the relay figures of two sets of results
(several runs each, as the machine is shared and noisy), run by run and as medians, which is
how each relay change's gain in docs/performance.md was measured."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

LEVEL = "{level}"
FIGURES = {
    "p50_ms": ("latency", LEVEL, "client", "latency", "p50_ms"),
    "p99_ms": ("latency", LEVEL, "client", "latency", "p99_ms"),
    "p999_ms": ("latency", LEVEL, "client", "latency", "p999_ms"),
    "cpu_s_per_1000": ("latency", LEVEL, "gateway_cpu_s_per_1000_events"),
    "max_cpu_s_per_1000": ("throughput", "gateway_cpu_s_per_1000_events"),
    "max_delivered": ("throughput", "delivered_events_per_s"),
}


def figures(path: Path, level: str) -> dict[str, float]:
    relay: dict[str, Any] = json.loads(path.read_text())["synthetic_relay"]
    found: dict[str, float] = {}
    for name, keys in FIGURES.items():
        value: Any = relay
        for key in keys:
            value = value[level if key == LEVEL else key]
        found[name] = float(value)
    return found


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(run[name] for run in runs) for name in FIGURES}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--level", default="1000", help="the concurrency to compare at")
    args = parser.parse_args()
    print(f"{'':>8}" + "".join(f"{name:>20}" for name in FIGURES))
    sides = {}
    for label, folder in (("before", args.before), ("after", args.after)):
        runs = [figures(path, args.level) for path in sorted(folder.glob("*.json"))]
        for run in runs:
            print(f"{label:>8}" + "".join(f"{run[name]:>20,.4g}" for name in FIGURES))
        sides[label] = medians(runs)
    for label, values in sides.items():
        print(f"{'median ' + label:>8}" + "".join(f"{values[n]:>20,.4g}" for n in FIGURES))
    change = {n: 100 * (sides["after"][n] / sides["before"][n] - 1) for n in FIGURES}
    print(f"{'change':>8}" + "".join(f"{change[n]:>19.1f}%" for n in FIGURES))


if __name__ == "__main__":
    main()
