"""An incremental Server-Sent Events decoder for the terminal client.

aiohttp reads the bytes but has no SSE client parser (aiohttp-sse is server-side only), and the
EventSource-style clients can neither POST a message nor resume a job on another route, so this
follows the WHATWG rules directly: CRLF, LF or CR end a line, comments are skipped, data lines
join with newlines, and ``id`` is remembered for Last-Event-ID."""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseMessage:
    data: str
    event: str = "message"
    # The id field of this very message; None for heartbeats and snapshots, which carry none.
    id: str | None = None


class SseDecoder:
    """Feed it bytes as they arrive; it returns the messages they complete."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[SseMessage]:
        self._buffer += self._decoder.decode(chunk)
        messages: list[SseMessage] = []
        start = 0
        while True:
            cr = self._buffer.find("\r", start)
            lf = self._buffer.find("\n", start)
            if cr < 0 and lf < 0:
                break
            if cr >= 0 and (lf < 0 or cr < lf):
                # A final CR may be half of a CRLF whose LF is in the next chunk.
                if cr == len(self._buffer) - 1:
                    break
                end, start_next = cr, cr + 2 if self._buffer[cr + 1] == "\n" else cr + 1
            else:
                end, start_next = lf, lf + 1
            message = self._line(self._buffer[start:end])
            if message is not None:
                messages.append(message)
            start = start_next
        self._buffer = self._buffer[start:]
        return messages

    def _line(self, line: str) -> SseMessage | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseMessage | None:
        message = None
        if self._data:
            message = SseMessage("\n".join(self._data), self._event or "message", self._id)
        self._data, self._event, self._id = [], "", None
        return message
