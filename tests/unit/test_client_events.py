"""chatstream-client's typed events, decoded from the JSON the gateway sends (docs/api.md,
"Events"); built here with the gateway's own payload functions, so the two cannot drift."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from chatstream_client import (
    Citation,
    EndEvent,
    ErrorEvent,
    HeartbeatEvent,
    ProgressEvent,
    ProtocolError,
    ResetEvent,
    StartEvent,
    TokenEvent,
    UnknownEvent,
    Usage,
    decode_event,
)

from shared import events

ROOT = Path(__file__).resolve().parents[2]
CITATION = {
    "id": 1,
    "project": "docs",
    "documentId": "d1",
    "document": "rag.md",
    "chunkId": "d1:0",
    "score": 2.5,
    "quotes": ["Workers agree."],
}


def decode(kind: str, payload: dict[str, object], seq: int | None = 3) -> object:
    return decode_event(orjson.dumps({"type": kind, **payload}).decode(), seq)


def test_each_event_type_decodes_to_its_class_with_python_names() -> None:
    start = decode(events.START, events.start_payload(job_id="j", session_id="s", message_id="m"))
    assert start == StartEvent("j", "s", "m", seq=3) and start.type == "start"

    progress = decode(events.PROGRESS, events.progress_payload("context", "reading", details="x"))
    assert isinstance(progress, ProgressEvent)
    assert (progress.step, progress.message, progress.details) == ("context", "reading", "x")
    assert progress.timestamp.tzinfo is not None

    assert decode(events.TOKEN, events.token_payload("hi")) == TokenEvent("hi", seq=3)
    heartbeat = decode(events.HEARTBEAT, events.heartbeat_payload("queued", 2), None)
    assert isinstance(heartbeat, HeartbeatEvent)
    assert (heartbeat.phase, heartbeat.queue_position, heartbeat.seq) == ("queued", 2, None)
    assert decode(events.RESET, {"reason": "gone"}) == ResetEvent("gone", seq=3)
    assert decode(events.ERROR, events.error_payload("boom", "pipeline_error")) == ErrorEvent(
        "boom", "pipeline_error", seq=3
    )


def test_the_end_event_carries_typed_citations_and_usage() -> None:
    payload = events.end_payload(
        message_id="m",
        content="Workers agree. [1]",
        finish_reason="stop",
        tokens=3,
        ttft_ms=None,
        duration_ms=40,
        citations=[CITATION],
    )
    end = decode(events.END, payload)
    assert isinstance(end, EndEvent)
    assert end.citations == (Citation(1, "docs", "d1", "rag.md", "d1:0", 2.5, ("Workers agree.",)),)
    assert end.usage == Usage(tokens=3, ttft_ms=None, duration_ms=40)


def test_an_unknown_type_is_kept_rather_than_refused() -> None:
    unknown = decode("handoff", {"to": "agent"})
    assert unknown == UnknownEvent("handoff", {"type": "handoff", "to": "agent"}, seq=3)


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"type": "token"}', "'content'"),
        ('{"type": "start", "jobId": 1, "sessionId": "s", "messageId": "m"}', "'jobId'"),
        ('{"type": "heartbeat", "timestamp": "yesterday", "phase": "running"}', "ISO-8601"),
    ],
)
def test_a_malformed_event_is_one_protocol_error_naming_the_field(data: str, named: str) -> None:
    with pytest.raises(ProtocolError, match=named):
        decode_event(data)


def test_a_citation_missing_a_field_is_refused() -> None:
    cited = {k: v for k, v in CITATION.items() if k != "quotes"}
    payload = {
        **events.end_payload(
            message_id="m", content="", finish_reason="stop", tokens=0, ttft_ms=None, duration_ms=0
        ),
        "citations": [cited],
    }
    with pytest.raises(ProtocolError, match="quotes"):
        decode(events.END, payload)


def test_times_are_aware_datetimes() -> None:
    heartbeat = decode(events.HEARTBEAT, {"timestamp": "2026-01-02T03:04:05Z", "phase": "running"})
    assert isinstance(heartbeat, HeartbeatEvent)
    assert heartbeat.timestamp == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_the_library_imports_only_itself_the_standard_library_and_httpx2() -> None:
    import ast
    import sys

    allowed = set(sys.stdlib_module_names) | {"chatstream_client", "httpx2"}
    package = ROOT / "clients/python/chatstream_client"
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
