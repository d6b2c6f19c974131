"""The msgpack wire between the services: a job and an event survive the round trip, and
anything malformed raises WireError, and only that (never a KeyError further down)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgpack
import pytest

from shared import events
from shared.events import Event, decode_event, encode_event
from shared.job import Job, decode_job, encode_job
from shared.wire import WIRE_VERSION, WireError

EVENT_FIELDS: dict[str, Any] = {
    "v": WIRE_VERSION,
    "job_id": "job-1",
    "seq": 1,
    "type": events.TOKEN,
    "payload": {"content": "x"},
}
JOB_FIELDS: dict[str, Any] = {
    "v": WIRE_VERSION,
    "job_id": "job-1",
    "session_id": "session-1",
    "message_id": "message-1",
    "user_id": "user-1",
    "pipeline": "echo",
    "text": "hello",
    "request_id": "request-1",
    "options": {"temperature": 0.5},
    "created_at_ms": 1_700_000_000_000,
}
DECODERS: list[Callable[[bytes], object]] = [decode_event, decode_job]


def packed(fields: dict[str, Any], **changes: Any) -> bytes:
    return msgpack.packb({**fields, **changes})


def without(fields: dict[str, Any], name: str) -> bytes:
    return msgpack.packb({key: value for key, value in fields.items() if key != name})


def test_an_event_survives_the_round_trip() -> None:
    event = Event("job-1", 2**40, events.END, {"content": "café €", "usage": {"tokens": 3}})
    assert decode_event(encode_event(event)) == event


def test_a_job_survives_the_round_trip() -> None:
    job = Job(
        job_id="job-1",
        session_id="session-1",
        message_id="message-1",
        user_id="user-1",
        pipeline="echo",
        text="héllo",
        request_id="request-1",
        options={"temperature": 0.5, "tags": ["a"]},
        created_at_ms=1_700_000_000_000,
    )
    assert decode_job(encode_job(job)) == job


def test_a_job_without_its_optional_fields_gets_their_defaults() -> None:
    fields = {key: JOB_FIELDS[key] for key in ("v", "job_id", "session_id", "message_id")}
    fields |= {key: JOB_FIELDS[key] for key in ("user_id", "pipeline", "text")}
    job = decode_job(msgpack.packb(fields))
    assert (job.request_id, job.options, job.created_at_ms) == ("", {}, 0)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    "raw",
    [b"", b"\xc1", b"\x82\xa1v", packed({"v": 1}) + b"\x00"],
    ids=["empty", "reserved-byte", "truncated", "trailing-bytes"],
)
def test_bytes_that_are_not_msgpack_raise_wire_error(
    decode: Callable[[bytes], object], raw: bytes
) -> None:
    with pytest.raises(WireError, match="not msgpack"):
        decode(raw)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("value", [[1, 2], "text", 7, None])
def test_msgpack_that_is_not_a_map_raises_wire_error(
    decode: Callable[[bytes], object], value: object
) -> None:
    with pytest.raises(WireError, match="not a msgpack map"):
        decode(msgpack.packb(value))


@pytest.mark.parametrize(
    ("decode", "fields"), [(decode_event, EVENT_FIELDS), (decode_job, JOB_FIELDS)]
)
@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_another_wire_version_raises_wire_error(
    decode: Callable[[bytes], object], fields: dict[str, Any], version: object
) -> None:
    with pytest.raises(WireError, match="wire version"):
        decode(packed(fields, v=version))


@pytest.mark.parametrize(
    ("decode", "fields"), [(decode_event, EVENT_FIELDS), (decode_job, JOB_FIELDS)]
)
def test_a_message_without_a_version_raises_wire_error(
    decode: Callable[[bytes], object], fields: dict[str, Any]
) -> None:
    with pytest.raises(WireError, match="wire version"):
        decode(without(fields, "v"))


@pytest.mark.parametrize("name", ["job_id", "seq", "type", "payload"])
def test_an_event_missing_a_field_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError, match="malformed event"):
        decode_event(without(EVENT_FIELDS, name))


@pytest.mark.parametrize(
    "name", ["job_id", "session_id", "message_id", "user_id", "pipeline", "text"]
)
def test_a_job_missing_a_required_field_raises_wire_error(name: str) -> None:
    with pytest.raises(WireError, match="malformed job"):
        decode_job(without(JOB_FIELDS, name))


@pytest.mark.parametrize(
    "changes",
    [
        {"job_id": 1},
        {"type": b"token"},
        {"seq": "1"},
        {"seq": 1.0},
        {"seq": True},
        {"seq": None},
    ],
    ids=["job-id-int", "type-bytes", "seq-text", "seq-float", "seq-bool", "seq-nil"],
)
def test_an_event_field_of_the_wrong_type_raises_wire_error(changes: dict[str, Any]) -> None:
    with pytest.raises(WireError, match="malformed event"):
        decode_event(packed(EVENT_FIELDS, **changes))


@pytest.mark.parametrize("seq", [0, -1, -(2**40)])
def test_an_event_seq_below_one_raises_wire_error(seq: int) -> None:
    with pytest.raises(WireError, match="seq must be a positive integer"):
        decode_event(packed(EVENT_FIELDS, seq=seq))


@pytest.mark.parametrize("payload", [[], "text", None, 1])
def test_an_event_payload_that_is_not_a_map_raises_wire_error(payload: object) -> None:
    with pytest.raises(WireError, match="payload must be a map"):
        decode_event(packed(EVENT_FIELDS, payload=payload))


@pytest.mark.parametrize(
    "changes",
    [
        {"job_id": 1},
        {"text": b"hello"},
        {"request_id": None},
        {"created_at_ms": "soon"},
        {"created_at_ms": None},
    ],
    ids=["job-id-int", "text-bytes", "request-id-nil", "created-at-text", "created-at-nil"],
)
def test_a_job_field_of_the_wrong_type_raises_wire_error(changes: dict[str, Any]) -> None:
    with pytest.raises(WireError, match="malformed job"):
        decode_job(packed(JOB_FIELDS, **changes))


@pytest.mark.parametrize("options", [[], "fast", None, 1])
def test_job_options_that_are_not_a_map_raise_wire_error(options: object) -> None:
    with pytest.raises(WireError, match="options must be a map"):
        decode_job(packed(JOB_FIELDS, options=options))


def test_job_options_that_msgpack_cannot_hold_raise_wire_error_when_encoding() -> None:
    job = Job("job-1", "session-1", "message-1", "user-1", "echo", "hi", options={"at": object()})
    with pytest.raises(WireError, match="job cannot be encoded"):
        encode_job(job)


def test_an_event_payload_that_msgpack_cannot_hold_raises_wire_error_when_encoding() -> None:
    event = Event("job-1", 1, events.TOKEN, {"count": 2**64})
    with pytest.raises(WireError, match="event cannot be encoded"):
        encode_event(event)
