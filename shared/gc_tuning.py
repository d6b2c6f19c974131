"""The garbage collector of a long-running service process, set once the process has started.

CPython's cyclic collector scans every tracked object of a generation each time it collects that
generation. With thousands of streams open a gateway tracks hundreds of thousands of objects,
and at CPython's default settings full collections paused it for up to 0.6 s each, sixteen
times in a one-minute benchmark with 5,000 streams: every event in flight waited that long.
"""

from __future__ import annotations

import gc

# CPython's default for the youngest generation: an event's objects mostly die by reference
# counting before a young collection sees them. Larger values made single young collections
# longer (tens of milliseconds) without fewer full ones.
YOUNG_THRESHOLD = 700
MIDDLE_THRESHOLD = 10
# A full collection at most every hundred middle ones, instead of every ten. CPython also
# waits until the objects promoted since the last one are a quarter of those it already holds;
# that rule alone allowed one every few seconds while streams kept opening.
OLD_THRESHOLD = 100


def settle_after_startup() -> None:
    """Collect what start-up left behind, then exempt everything alive now from all later
    collections: the imported modules, the application and its connections (about 90,000
    objects, 80 ms a full collection on the benchmark machine) live as long as the process."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
