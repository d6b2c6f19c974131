"""Identifiers: server-made ones, and the client-chosen session ids docs/api.md allows."""

from __future__ import annotations

import re
import uuid

# fullmatch, never match with ^...$: "$" also matches before a final newline, and an id ends up
# in a response header, where a newline is refused.
_DIGITS = re.compile(r"[0-9]{1,20}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


# Between the session id a job's or message's id starts with and the rest of it; never part of
# a session id (digits or a UUID).
SCOPE_SEPARATOR = "."


def new_id() -> str:
    return str(uuid.uuid4())


def new_scoped_id(session_id: str) -> str:
    """A new id of a job or message of ``session_id``, which it starts with: a Redis Cluster
    keeps the session's keys and its jobs' and messages' in one slot, and the id alone says
    which (resume and cancel know nothing else)."""
    return f"{session_id}{SCOPE_SEPARATOR}{uuid.uuid4().hex}"


def new_job_id(session_id: str, *, in_session_slot: bool) -> str:
    """A new job's id: scoped to ``session_id`` where its keys must share the session's slot
    (a Redis Cluster), else a plain UUID, half as long. Each of the job's events carries the id
    twice on its way to the gateway (its channel and the event) and once in its replay log,
    where the scoped id costs a third more memory (docs/redis-cluster.md); a job lives only as
    long as its replay log, so no stored data depends on the choice."""
    return new_scoped_id(session_id) if in_session_slot else new_id()


def normalize_session_id(value: object) -> str:
    """A client-chosen session id as stored: digits (a JSON number or a string of at most 20
    digits) or a UUID, lowercased. Anything else raises ValueError."""
    if isinstance(value, bool):  # a JSON true is an int to Python, never an id
        raise ValueError("must be digits or a UUID")  # noqa: TRY004 - pydantic reports ValueError
    if isinstance(value, int):
        if value < 0 or len(str(value)) > 20:
            raise ValueError("must be at most 20 digits")
        return str(value)
    if isinstance(value, str):
        if _DIGITS.fullmatch(value):
            return value
        if _UUID.fullmatch(value):
            return value.lower()
    raise ValueError("must be digits (at most 20) or a UUID")
