"""``python -m bench.profile_summary FILE.speedscope.json``: the functions a py-spy profile
spent its samples in, by self time and by total time, as a short text table."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def summarize(path: Path, top: int) -> str:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    names = [f"{f['name']} ({Path(f.get('file', '?')).name}:{f.get('line', '?')})" for f in frames]
    self_time: Counter[int] = Counter()
    total_time: Counter[int] = Counter()
    samples = 0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            samples += weight
            if stack:
                self_time[stack[-1]] += weight
            for frame in set(stack):
                total_time[frame] += weight
    lines = [f"{path.name}: {samples} samples"]
    for title, counter in (("self", self_time), ("total", total_time)):
        lines.append(f"  by {title} time:")
        for frame, weight in counter.most_common(top):
            lines.append(f"    {100 * weight / max(samples, 1):5.1f}%  {names[frame]}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_summary", description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        print(summarize(path, args.top))


if __name__ == "__main__":
    main()
