"""Reading a run's results (the JSON ``python -m bench`` writes), for the report and the peer
row."""

from __future__ import annotations

from typing import Any


def get(result: dict[str, Any], *path: str) -> Any:
    """The value at ``path``, or None where it is missing or its measurement failed."""
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
        if isinstance(value, dict) and "error" in value:
            return None
    return value
