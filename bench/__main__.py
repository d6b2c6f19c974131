"""``python -m bench``: run the measurements, write ``bench-results/<timestamp>.json`` and a PNG
plot beside it, and print the table. ``--scale smoke`` runs everything tiny (the smoke test)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from bench import peer_report, procs, report, toolio
from bench.scale import SCALES
from bench.scenarios import SCENARIOS, Context


async def run(
    scale_name: str,
    out_root: Path,
    only: list[str],
    *,
    profile: bool = False,
    levels: list[int] | None = None,
    tracing: bool = False,
) -> tuple[dict[str, Any], Path]:
    if not tracing:
        return await _run(scale_name, out_root, only, profile=profile, levels=levels)
    # Every process the scenarios start inherits this environment: each chat is traced, its
    # spans exported the way production exports them, to a sink that only takes them.
    sink = procs.HelperServer("bench.otlp_sink", out_root / "otlp-sink.log")
    await sink.start()
    saved = dict(os.environ)
    os.environ.update(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.url, "OTEL_TRACES_SAMPLER": "parentbased_always_on"}
    )
    os.environ.pop("OTEL_SDK_DISABLED", None)
    try:
        result, json_path = await _run(scale_name, out_root, only, profile=profile, levels=levels)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        await sink.stop()
    return result, json_path


async def _run(
    scale_name: str,
    out_root: Path,
    only: list[str],
    *,
    profile: bool,
    levels: list[int] | None,
) -> tuple[dict[str, Any], Path]:
    toolio.cancel_on_signals()
    scale = SCALES[scale_name]
    if levels:
        scale = dataclasses.replace(scale, levels=tuple(levels))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = out_root / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(scale=scale, out_dir=out_dir, profile=profile)
    result: dict[str, Any] = {
        "started_at": stamp,
        "scale": scale_name,
        "config": dataclasses.asdict(scale),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "fd_limit": toolio.raise_fd_limit(),
        # Whether the services traced every chat (--tracing).
        "tracing": "OTEL_EXPORTER_OTLP_ENDPOINT" in os.environ,
    }
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        started = time.monotonic()
        print(f"bench: {name} ...", flush=True)
        try:
            result[name] = await scenario(ctx)
        except Exception as e:  # one failed measurement must not lose the others
            result[name] = {"error": repr(e)}
            print(f"bench: {name} failed: {e!r}", flush=True)
        result.setdefault("durations_s", {})[name] = round(time.monotonic() - started, 1)
    result["targets"] = report.targets(result)
    # chatstream's relay against the nchan peer's, both from this run: chatstream / nchan.
    result["nchan_ratios"] = peer_report.ratios(result)
    json_path = out_root / f"{stamp}.json"
    json_path.write_text(json.dumps(result, indent=2))
    result["plot"] = str(out_root / f"{stamp}.png")
    if not report.plot(result, Path(result["plot"])):
        result["plot"] = None
    json_path.write_text(json.dumps(result, indent=2))
    return result, json_path


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--only", nargs="*", default=[], choices=sorted(SCENARIOS))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record each gateway with py-spy (speedscope JSON beside the results)",
    )
    parser.add_argument("--levels", nargs="*", type=int, help="concurrent streams to measure at")
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="trace every chat (100%% sampling), exported over OTLP/HTTP to a local sink",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        result, json_path = uvloop.run(
            run(
                args.scale,
                args.out,
                args.only,
                profile=args.profile,
                levels=args.levels,
                tracing=args.tracing,
            )
        )
    except asyncio.CancelledError:
        sys.exit("stopped by a signal; what it started is stopped and its namespaces purged")
    print(report.table(result))
    print(f"\n  results: {json_path}" + (f", plot: {result['plot']}" if result["plot"] else ""))


if __name__ == "__main__":
    main()
