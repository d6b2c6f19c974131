"""The nchan peer row in the report: chatstream's relay figures beside nchan's, both from the
same run (``synthetic_relay`` and ``nchan_peer``), and their ratio, chatstream over nchan: below
1 is chatstream lower (faster, cheaper), except for delivered events/s, where above 1 is more."""

from __future__ import annotations

from typing import Any

from bench.results import get

# The headline concurrency; at another scale (the smoke test's), the largest both measured.
HEADLINE_LEVEL = "1000"
RELAY, PEER = "synthetic_relay", "nchan_peer"


def level(result: dict[str, Any]) -> str | None:
    """The concurrency the two are set against at."""
    ours = get(result, RELAY, "latency") or {}
    theirs = get(result, PEER, "latency") or {}
    # Where only one of the two ran, its levels (the other's cells print as missing).
    common = (set(ours) & set(theirs)) or set(ours) | set(theirs)
    if HEADLINE_LEVEL in common:
        return HEADLINE_LEVEL
    return max(common, key=int, default=None)


def ratios(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each figure for chatstream and nchan, and chatstream / nchan (None where either is
    missing)."""
    at = level(result) or HEADLINE_LEVEL
    latency = ("latency", at, "client", "latency")
    figures = [
        (f"relay p50 at {at} streams (ms)", (*latency, "p50_ms"), (*latency, "p50_ms")),
        (f"relay p99 at {at} streams (ms)", (*latency, "p99_ms"), (*latency, "p99_ms")),
        (
            f"CPU-s per 1,000 events at {at} streams",
            ("latency", at, "gateway_cpu_s_per_1000_events"),
            ("latency", at, "nginx_cpu_s_per_1000_events"),
        ),
        (
            "delivered events/s kept up with",
            ("sustained", "delivered_events_per_s"),
            ("sustained", "delivered_events_per_s"),
        ),
    ]
    rows = []
    for name, ours_path, theirs_path in figures:
        ours, theirs = get(result, RELAY, *ours_path), get(result, PEER, *theirs_path)
        ratio = round(ours / theirs, 3) if ours is not None and theirs else None
        rows.append({"figure": name, "chatstream": ours, "nchan": theirs, "ratio": ratio})
    return rows


def latency_rows(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """nchan's latency at each concurrency, labelled for the latency table."""
    return [
        (f"nchan peer, {streams} streams, {phase['rate']:,.0f} ev/s", phase["client"]["latency"])
        for streams, phase in (get(result, PEER, "latency") or {}).items()
    ]


def skipped(result: dict[str, Any]) -> str | None:
    """Why the nchan row did not run (not installed, or failed), or None."""
    peer = result.get(PEER)
    if not isinstance(peer, dict):
        return "not run (--only)"
    reason = peer.get("skipped") or peer.get("error")
    return None if reason is None else str(reason)
