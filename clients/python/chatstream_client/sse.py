"""An incremental Server-Sent Events decoder: bytes in, messages out, no I/O.

It follows the WHATWG rules (CRLF, LF or CR end a line, comments are skipped, data lines join
with newlines) with one departure: each message reports the ``id`` field it carried itself,
not the last one seen. The contract gives ids only to a job's own events; heartbeats and the
snapshot carry none, and a client that drops every event at or below the last seq it saw must
tell the two apart (httpx2's and httpx-sse's decoders repeat the last id on every message)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from chatstream_client.errors import ProtocolError

# Far above any message chatstream sends (an end event holds the whole answer), and a bound on
# what a broken or hostile server can make the client hold.
MAX_MESSAGE_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SseMessage:
    data: str
    event: str = "message"
    # The id field of this very message; None for heartbeats and snapshots, which carry none.
    id: str | None = None


class SseDecoder:
    """Feed it bytes as they arrive; it returns the messages they complete."""

    def __init__(self, max_message_chars: int = MAX_MESSAGE_CHARS) -> None:
        self._max_message_chars = max_message_chars
        self._message_chars = 0
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
        if self._message_chars + len(self._buffer) > self._max_message_chars:
            raise ProtocolError(f"an event longer than {self._max_message_chars} characters")
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
            self._message_chars += len(value)
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
        self._message_chars = 0
        return message
