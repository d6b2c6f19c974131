"""The msgpack envelope of every message between the services: the job (gateway to worker, over
RabbitMQ, :mod:`shared.job`) and the event (worker to gateway, over Redis pub/sub and the replay
log, :mod:`shared.events`).

Each message is a msgpack map with a version field ``v``. A message that cannot be encoded or
decoded raises :class:`WireError`, and only that, whatever was wrong with it.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

WIRE_VERSION: Final = 1


class WireError(ValueError):
    """A job or event on the wire is not one chatstream can read or write."""


def pack(message: dict[str, Any], what: str) -> bytes:
    """``message`` (which carries ``"v": WIRE_VERSION``) as msgpack."""
    try:
        return msgpack.packb(message)
    except (OverflowError, TypeError, ValueError) as e:
        raise WireError(f"{what} cannot be encoded: {e}") from e


def unpack(raw: bytes, what: str) -> dict[str, Any]:
    """The map in ``raw``, once its version is checked; its fields are the caller's to check."""
    try:
        data = msgpack.unpackb(raw)
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise WireError(f"{what} is not msgpack: {e}") from e
    if not isinstance(data, dict):
        raise WireError(f"{what} is not a msgpack map")
    version = data.get("v")
    if version != WIRE_VERSION:
        raise WireError(f"{what} has wire version {version!r}, expected {WIRE_VERSION}")
    return data


def text(value: object) -> str:
    """``value`` if it is a string; raises TypeError otherwise (the decoder wraps it)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value
