"""Reading the gateway's JSON by the contract's field names. A missing or mistyped field raises
one ProtocolError that names it, instead of a KeyError deep in the caller's code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatstream_client.errors import ProtocolError

_MISSING = object()


class Fields:
    """One JSON object of the gateway's, read field by field."""

    def __init__(self, value: object, what: str) -> None:
        if not isinstance(value, dict):
            raise ProtocolError(f"{what} is not a JSON object")
        self.value: dict[str, Any] = value
        self._what = what

    def _get(self, name: str, types: type | tuple[type, ...], optional: bool) -> Any:
        value = self.value.get(name, _MISSING)
        if optional and value in (_MISSING, None):
            return None
        # bool is an int in Python, never in the contract.
        if value is _MISSING or isinstance(value, bool) or not isinstance(value, types):
            raise ProtocolError(f"{self._what}: {name!r} is missing or not a {types}")
        return value

    def text(self, name: str) -> str:
        value: str = self._get(name, str, optional=False)
        return value

    def optional_text(self, name: str) -> str | None:
        value: str | None = self._get(name, str, optional=True)
        return value

    def whole(self, name: str) -> int:
        value: int = self._get(name, int, optional=False)
        return value

    def optional_whole(self, name: str) -> int | None:
        value: int | None = self._get(name, int, optional=True)
        return value

    def number(self, name: str) -> float:
        return float(self._get(name, (int, float), optional=False))

    def flag(self, name: str) -> bool:
        value = self.value.get(name)
        if not isinstance(value, bool):
            raise ProtocolError(f"{self._what}: {name!r} is missing or not a boolean")
        return value

    def time(self, name: str) -> datetime:
        try:
            return datetime.fromisoformat(self.text(name))
        except ValueError as e:
            raise ProtocolError(f"{self._what}: {name!r} is not an ISO-8601 time") from e

    def nested(self, name: str) -> Fields:
        return Fields(self.value.get(name), f"{self._what}.{name}")

    def mapping(self, name: str) -> dict[str, Any]:
        return self.nested(name).value

    def items(self, name: str, *, optional: bool = False) -> list[Any]:
        value: list[Any] | None = self._get(name, list, optional=optional)
        return [] if value is None else value

    def texts(self, name: str) -> tuple[str, ...]:
        values = self.items(name)
        if not all(isinstance(v, str) for v in values):
            raise ProtocolError(f"{self._what}: {name!r} holds a value that is not a string")
        return tuple(values)
