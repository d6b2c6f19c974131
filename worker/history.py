"""A session's history as the pipelines read it, from the stored messages."""

from __future__ import annotations

from shared.messages import STATUS_STREAMING, MessageStore


class SessionHistory:
    """The settled messages of a session, oldest first, without the turn being answered now
    (its user message and its still-streaming answer end the stored list)."""

    def __init__(self, messages: MessageStore) -> None:
        self._messages = messages

    async def recent(self, session_id: str, limit: int) -> list[tuple[str, str]]:
        stored = await self._messages.of_session(session_id)
        if stored and stored[-1].status == STATUS_STREAMING:
            stored = stored[:-2]
        settled = [m for m in stored if m.status != STATUS_STREAMING and m.content]
        return [(m.role, m.content) for m in settled[-limit:]] if limit > 0 else []
