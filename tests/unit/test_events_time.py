"""Event timestamps: ISO-8601 in UTC with milliseconds and a ``Z``, as datetime formats them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from shared.events import iso_from_epoch_ms, utc_now_iso


def datetime_iso(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_timestamps_match_datetimes_across_seconds_and_years() -> None:
    samples = [0, 999, 1000, 1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_999]
    samples += [1_704_067_199_999, 1_704_067_200_000, 4_102_444_800_123]
    for epoch_ms in samples:
        assert iso_from_epoch_ms(epoch_ms) == datetime_iso(epoch_ms)
    # The cache of the last second must not leak into an earlier one.
    assert iso_from_epoch_ms(1_700_000_000_500) == "2023-11-14T22:13:20.500Z"
    assert iso_from_epoch_ms(999) == "1970-01-01T00:00:00.999Z"


def test_now_has_the_contract_shape() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_now_iso())
