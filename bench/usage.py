"""CPU-seconds and memory of the processes under test, read through psutil (the bench group).

Without psutil (``make test`` does not install the bench group) every reading is ``None`` and
the report says so, so the harness still runs end to end in the smoke test.
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    import psutil
except ImportError:  # pragma: no cover - depends on the installed group
    psutil = None  # type: ignore[assignment]

# The shared servers, found by process name: where a chat's time goes besides our processes.
SERVER_NAMES = {"redis": ("redis-server",), "broker": ("beam.smp", "beam")}


def server_pids() -> dict[str, list[int]]:
    if psutil is None:
        return {}
    found: dict[str, list[int]] = {name: [] for name in SERVER_NAMES}
    for process in psutil.process_iter(["name"]):
        for group, names in SERVER_NAMES.items():
            if process.info["name"] in names:
                found[group].append(process.pid)
    return found


def cpu_seconds(groups: Mapping[str, list[int]]) -> dict[str, float] | None:
    """User plus system CPU-seconds so far of each group of processes."""
    if psutil is None:
        return None
    totals: dict[str, float] = {}
    for group, pids in groups.items():
        total = 0.0
        for pid in pids:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        totals[group] = total
    return totals


def machine_busy_seconds() -> float | None:
    """CPU-seconds every process on the machine has spent so far, on all cores."""
    if psutil is None:
        return None
    times = psutil.cpu_times()
    # Linux's fields; guest time is already counted in user.
    busy = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(times, field, 0.0) for field in busy))


def cpu_delta(
    before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {group: round(after[group] - before.get(group, 0.0), 3) for group in after}


def children(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (an nginx master's workers)."""
    if psutil is None:
        return []
    try:
        return [child.pid for child in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def rss_bytes(pid: int) -> int | None:
    if psutil is None:
        return None
    try:
        rss: int = psutil.Process(pid).memory_info().rss
        return rss
    except psutil.Error:
        return None
