"""The ``context`` step: the session's recent messages, newest kept first, within a budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class HistoryReader(Protocol):
    async def recent(self, session_id: str, limit: int) -> list[tuple[str, str]]:
        """The session's last ``limit`` messages as (role, content), oldest first."""
        ...


class NoHistory:
    """The reader until the session store is wired in: every session starts empty."""

    async def recent(self, session_id: str, limit: int) -> list[tuple[str, str]]:
        return []


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Context:
    turns: list[Turn]
    tokens: int
    dropped: int
    summary: str


def estimate_tokens(text: str) -> int:
    """A model-free token estimate: about four tokens for every three words."""
    return (len(text.split()) * 4 + 2) // 3


def fit_history(history: list[tuple[str, str]], budget_tokens: int, summary: str = "") -> Context:
    """The most recent messages whose estimated tokens fit in the budget, oldest first."""
    kept: list[Turn] = []
    used = estimate_tokens(summary)
    for role, content in reversed(history):
        cost = estimate_tokens(content)
        if used + cost > budget_tokens:
            break
        kept.insert(0, Turn(role, content))
        used += cost
    return Context(kept, used, len(history) - len(kept), summary)
