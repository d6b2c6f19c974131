"""chatstream-client's stream state without a server: which request comes next, what a
connection's bytes give, and when a cut is resumed or raised (pure logic, fed by hand)."""

from __future__ import annotations

import orjson
import pytest
from chatstream_client import (
    Backoff,
    ChatstreamError,
    EndEvent,
    HeartbeatEvent,
    StartEvent,
    TokenEvent,
)
from chatstream_client.errors import StreamCut, error_from_response
from chatstream_client.follow import Follow, HttpRequest

OPENING = HttpRequest("POST", "/api/v1/chat/stream", {"text": "hi"})
SSE = {"content-type": "text/event-stream; charset=utf-8", "x-job-id": "j1", "x-session-id": "s1"}
START = {"type": "start", "jobId": "j1", "sessionId": "s1", "messageId": "m1"}
END = {
    "type": "end",
    "messageId": "m1",
    "delta": "",
    "done": True,
    "finishReason": "stop",
    "content": "a b",
    "citations": [],
    "usage": {"tokens": 2, "ttftMs": 5, "durationMs": 9},
}
HEARTBEAT = {"type": "heartbeat", "timestamp": "2026-01-02T03:04:05Z", "phase": "running"}


def frame(payload: dict[str, object], seq: int | None = None) -> bytes:
    head = b"" if seq is None else b"id: %d\n" % seq
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def token(text: str) -> dict[str, object]:
    return {"type": "token", "content": text, "delta": text, "done": False}


def opened(follow: Follow) -> Follow:
    assert follow.next_request() == OPENING
    follow.response_started(200, SSE, b"")
    return follow


def test_events_seen_before_are_dropped_and_heartbeats_without_an_id_are_not() -> None:
    follow = opened(Follow(OPENING))
    first = follow.feed(frame(START, 1) + frame(token("a"), 2))
    assert [type(e) for e in first] == [StartEvent, TokenEvent]
    follow.interrupted(follow.closed_early())

    resume = follow.next_request()
    assert resume.method == "GET" and resume.path == "/api/v1/streams/j1"
    assert resume.headers == {"Last-Event-ID": "2"}
    follow.response_started(200, SSE, b"")
    # A server that replays too much: seq 1 and 2 again.
    replayed = frame(START, 1) + frame(token("a"), 2) + frame(HEARTBEAT) + frame(token(" b"), 3)
    events = follow.feed(replayed + frame(END, 4))
    assert [(type(e), e.seq) for e in events] == [
        (HeartbeatEvent, None),
        (TokenEvent, 3),
        (EndEvent, 4),
    ]
    assert follow.finished and follow.last_event_id == 4


def test_a_slow_client_error_keeps_the_events_before_it_then_cuts() -> None:
    follow = opened(Follow(OPENING))
    slow = {"type": "error", "error": "too slow", "code": "slow_client"}
    events = follow.feed(frame(START, 1) + frame(token("a"), 2) + frame(slow))
    assert [e.seq for e in events] == [1, 2]
    with pytest.raises(StreamCut, match="slow_client"):
        follow.feed(frame(token(" b"), 3))
    assert "slow_client" in str(follow.closed_early())
    assert follow.interrupted(follow.closed_early()).attempt == 1


def test_a_pipeline_error_ends_the_stream_as_an_event() -> None:
    follow = opened(Follow(OPENING))
    failed = {"type": "error", "error": "boom", "code": "pipeline_error"}
    events = follow.feed(frame(START, 1) + frame(failed, 2) + frame(token("late"), 3))
    assert [e.type for e in events] == ["start", "error"] and follow.finished


def test_a_refused_request_is_raised_and_a_cut_before_the_job_is_known_is_not_resumed() -> None:
    follow = Follow(OPENING)
    follow.next_request()
    body = orjson.dumps({"error": {"code": "rate_limited", "message": "slow down"}})
    with pytest.raises(ChatstreamError) as refused:
        follow.response_started(429, {"retry-after": "7"}, body)
    assert (refused.value.code, refused.value.retry_after_s) == ("rate_limited", 7.0)
    # Nothing says the job exists: sending the message again is the caller's decision.
    with pytest.raises(ChatstreamError):
        follow.interrupted(refused.value)
    with pytest.raises(ChatstreamError) as network:
        follow.interrupted(ConnectionResetError("reset"))
    assert (network.value.status, network.value.code) == (0, "network")


def test_a_resume_waits_as_retry_after_says_and_gives_up_after_max_attempts() -> None:
    follow = opened(Follow(OPENING, backoff=Backoff(max_attempts=2)))
    busy = ChatstreamError(503, "unavailable", "busy", retry_after_s=3.0)
    assert follow.interrupted(busy).delay_s == 3.0
    assert follow.interrupted(StreamCut("cut")).attempt == 2
    with pytest.raises(ChatstreamError, match="gave up after 2 attempts"):
        follow.interrupted(StreamCut("cut"))
    not_found = ChatstreamError(404, "not_found", "gone")
    with pytest.raises(ChatstreamError) as raised:
        Follow(None, job_id="j1").interrupted(not_found)
    assert raised.value is not_found


def test_the_backoff_starts_from_the_gateways_retry_and_is_capped() -> None:
    follow = opened(Follow(OPENING, backoff=Backoff(initial_s=0.5, max_s=4.0)))
    follow.feed(b"retry: 2000\n\n" + frame(START, 1))
    delays = [follow.interrupted(StreamCut("cut")).delay_s for _ in range(4)]
    # Equal jitter: each wait is between half its step and the step (2 s, 4 s, then 4 s).
    for delay, step in zip(delays, [2.0, 4.0, 4.0, 4.0], strict=True):
        assert step / 2 <= delay <= step


def test_attaching_with_a_ticket_and_a_last_event_id() -> None:
    follow = Follow(None, job_id="j 1", last_event_id=7, ticket="t")
    request = follow.next_request()
    assert (request.path, request.params, request.headers) == (
        "/api/v1/streams/j%201",
        {"ticket": "t"},
        {"Last-Event-ID": "7"},
    )


def test_a_cancel_asked_before_the_job_is_known_is_sent_once_it_is() -> None:
    follow = Follow(OPENING)
    assert follow.cancel_target() is None
    assert follow.pending_cancel() is None
    opened_follow = opened(follow)
    assert opened_follow.pending_cancel() == "j1"
    assert opened_follow.pending_cancel() is None


def test_a_body_that_is_not_the_contracts_still_gives_the_status() -> None:
    error = error_from_response(502, None, b"<html>Bad gateway</html>")
    assert (error.status, error.code, error.retryable) == (502, "http_502", True)


def test_a_reply_that_is_not_a_stream_is_refused() -> None:
    follow = Follow(OPENING)
    follow.next_request()
    with pytest.raises(ChatstreamError) as refused:
        follow.response_started(200, {"content-type": "text/html"}, b"")
    assert refused.value.code == "not_a_stream"
