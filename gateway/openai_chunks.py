"""chatstream's job events as OpenAI chat completion objects. Pure functions: the relay calls
:meth:`CompletionChunks.frame` for each event of a ``stream: true`` completion, and the
non-streaming route builds one ``chat.completion`` from the job's ``end`` event.

Departs from chatstream's own wire on purpose: no ``id:`` lines, no heartbeat events (OpenAI
clients reject unknown chunks; keep-alives are SSE comments), and ``data: [DONE]`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import events, sse
from shared.events import Event
from shared.ids import new_id

DONE_FRAME = b"data: [DONE]\n\n"
KEEP_ALIVE_FRAME = sse.comment_frame("keep-alive")

# OpenAI knows no "cancelled": a stopped answer simply stops.
_FINISH_REASONS = {
    events.FINISH_STOP: "stop",
    events.FINISH_LENGTH: "length",
    events.FINISH_CANCELLED: "stop",
}


def completion_id() -> str:
    return f"chatcmpl-{new_id()}"


def finish_reason(end: dict[str, Any]) -> str:
    return _FINISH_REASONS.get(str(end.get("finishReason")), "stop")


def usage(prompt: str, end: dict[str, Any]) -> dict[str, int]:
    """OpenAI's usage block. Prompt tokens are counted as words, the unit the pipelines'
    own token counts use."""
    completion_tokens = int((end.get("usage") or {}).get("tokens") or 0)
    prompt_tokens = len(prompt.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def error_body(payload: dict[str, Any]) -> dict[str, Any]:
    """An ``error`` event the way OpenAI clients recognise a failure inside a stream."""
    return {
        "error": {
            "message": str(payload.get("error", "the job failed")),
            "type": "server_error",
            "code": payload.get("code"),
        }
    }


@dataclass(frozen=True, slots=True)
class CompletionChunks:
    """The ``chat.completion`` objects of one job, for one model name."""

    id: str
    model: str
    created_s: int
    prompt: str

    def _object(self, kind: str, choice: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created_s,
            "model": self.model,
            "choices": [{"index": 0, **choice}],
            **extra,
        }

    def chunk(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return self._object(
            "chat.completion.chunk", {"delta": delta, "logprobs": None, "finish_reason": reason}
        )

    def frame(self, frame: Event) -> bytes:
        """One relayed event as the bytes of zero or more chunks (progress says nothing)."""
        payload = frame.payload
        if frame.type == events.START:
            body = self.chunk({"role": "assistant", "content": ""})
        elif frame.type == events.TOKEN:
            body = self.chunk({"content": payload.get("content", "")})
        elif frame.type == events.END:
            final = self.chunk({}, finish_reason(payload))
            final["usage"] = usage(self.prompt, payload)
            return sse.data_frame(sse.json_line(final)) + DONE_FRAME
        elif frame.type == events.ERROR:
            return sse.data_frame(sse.json_line(error_body(payload))) + DONE_FRAME
        else:
            return b""
        return sse.data_frame(sse.json_line(body))

    def heartbeat(self, _phase: str) -> bytes:
        return KEEP_ALIVE_FRAME

    def completion(self, end: dict[str, Any]) -> dict[str, Any]:
        """The whole answer as one ``chat.completion``, from the job's ``end`` event."""
        message = {"role": "assistant", "content": str(end.get("content", ""))}
        return self._object(
            "chat.completion",
            {"message": message, "logprobs": None, "finish_reason": finish_reason(end)},
            usage=usage(self.prompt, end),
        )
