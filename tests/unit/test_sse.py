"""Server-Sent Events byte for byte: what every client of a stream parses (docs/api.md)."""

from __future__ import annotations

from shared import events, sse
from shared.events import Event


def test_an_event_is_its_id_line_then_its_data_line_then_a_blank_line() -> None:
    event = Event("job-1", 7, events.TOKEN, events.token_payload("hi"))
    assert event.sse == (
        b'id: 7\ndata: {"type":"token","content":"hi","delta":"hi","done":false}\n\n'
    )


def test_an_event_is_encoded_once_and_the_same_bytes_serve_every_client() -> None:
    event = Event("job-1", 1, events.START, {"jobId": "job-1"})
    assert event.sse is event.sse


def test_encoding_an_event_leaves_its_equality_and_repr_alone() -> None:
    encoded = Event("job-1", 1, events.START, {"jobId": "job-1"})
    assert encoded.sse
    fresh = Event("job-1", 1, events.START, {"jobId": "job-1"})
    assert encoded == fresh
    assert repr(encoded) == repr(fresh)
    assert "sse" not in repr(encoded)


def test_a_heartbeat_is_a_data_line_alone_so_it_does_not_move_last_event_id() -> None:
    payload = {"type": "heartbeat", "timestamp": "2026-01-02T03:04:05.678Z", "phase": "queued"}
    assert sse.data_frame(sse.json_line(payload)) == (
        b'data: {"type":"heartbeat","timestamp":"2026-01-02T03:04:05.678Z","phase":"queued"}\n\n'
    )


def test_a_snapshot_is_a_named_event_with_no_id() -> None:
    frame = sse.named_frame(events.SNAPSHOT, sse.json_line({"messages": []}))
    assert frame == b'event: snapshot\ndata: {"messages":[]}\n\n'


def test_the_retry_line_gives_milliseconds() -> None:
    assert sse.retry_frame(3000) == b"retry: 3000\n\n"


def test_a_comment_is_a_colon_line() -> None:
    assert sse.comment_frame("keep-alive") == b": keep-alive\n\n"


def test_non_ascii_goes_out_as_utf8_and_a_newline_inside_a_string_stays_on_one_data_line() -> None:
    event = Event("job-1", 3, events.TOKEN, {"content": "café\nnaïve\r\n€"})
    assert event.sse == (
        b'id: 3\ndata: {"type":"token",'
        b'"content":"caf\xc3\xa9\\nna\xc3\xafve\\r\\n\xe2\x82\xac"}\n\n'
    )
    lines = event.sse.split(b"\n")
    assert [line for line in lines if line.startswith(b"data:")] == [lines[1]]
    assert lines[2:] == [b"", b""]


def test_merged_tokens_are_one_token_event_under_the_last_seq() -> None:
    tokens = [
        Event("job-1", 4, events.TOKEN, events.token_payload("a")),
        Event("job-1", 5, events.TOKEN, events.token_payload("b")),
    ]
    merged = events.merge_tokens(tokens)
    assert merged == Event("job-1", 5, events.TOKEN, events.token_payload("ab"))
    assert merged.sse.startswith(b"id: 5\ndata: ")
