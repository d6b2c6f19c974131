"""The OpenAI encoding of job events, on its own (pure functions, exact bytes)."""

from __future__ import annotations

import json
from typing import Any

from gateway.openai_chunks import DONE_FRAME, CompletionChunks
from shared import events
from shared.events import Event

CHUNKS = CompletionChunks(id="chatcmpl-1", model="echo", created_s=1_700_000_000, prompt="a b")


def frame(kind: str, payload: dict[str, Any], seq: int = 1) -> Event:
    return Event(job_id="job", seq=seq, type=kind, payload=payload)


def data_of(raw: bytes) -> list[str]:
    return [line.removeprefix(b"data: ").decode() for line in raw.split(b"\n") if line]


def test_a_token_is_one_chunk_with_its_content_and_nothing_else() -> None:
    raw = CHUNKS.frame(frame(events.TOKEN, events.token_payload(" world")))
    assert raw.startswith(b"data: {") and raw.endswith(b"}\n\n") and raw.count(b"\n") == 2
    chunk = json.loads(data_of(raw)[0])
    assert chunk == {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "echo",
        "choices": [
            {"index": 0, "delta": {"content": " world"}, "logprobs": None, "finish_reason": None}
        ],
    }


def test_progress_says_nothing_and_heartbeats_are_comments() -> None:
    assert CHUNKS.frame(frame(events.PROGRESS, events.progress_payload("start", "go"))) == b""
    assert CHUNKS.heartbeat("queued") == b": keep-alive\n\n"


def test_the_end_carries_finish_reason_and_usage_then_done() -> None:
    for finish, expected in (("stop", "stop"), ("length", "length"), ("cancelled", "stop")):
        end = events.end_payload(
            message_id="m", content="x y z", finish_reason=finish, tokens=3, ttft_ms=1,
            duration_ms=2,
        )  # fmt: skip
        raw = CHUNKS.frame(frame(events.END, end))
        assert raw.endswith(DONE_FRAME)
        chunk = json.loads(data_of(raw)[0])
        assert chunk["choices"][0] == {
            "index": 0, "delta": {}, "logprobs": None, "finish_reason": expected,
        }  # fmt: skip
        assert chunk["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_an_error_is_an_openai_error_object_then_done() -> None:
    raw = CHUNKS.frame(frame(events.ERROR, events.error_payload("boom", "pipeline_failed")))
    first, done = data_of(raw)
    assert json.loads(first) == {
        "error": {"message": "boom", "type": "server_error", "code": "pipeline_failed"}
    }
    assert done == "[DONE]"
