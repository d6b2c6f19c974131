"""Hostile JSON bodies on every route that takes one: nesting from 33 to 10,000 levels, numbers
JSON cannot carry or no field can hold, bodies over MAX_BODY_BYTES, and compressed bodies that
inflate past it or do not inflate at all."""

from __future__ import annotations

import functools
import gzip
import json
import tracemalloc
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import AUTH
from tests.security.support import (
    JSON_ROUTES,
    Client,
    Reply,
    World,
    assert_error,
    body_for,
    nested,
    nested_text,
    route_named,
    send,
    send_json,
)

MAX_BODY_BYTES = 64 * 1024
JSON_LABELS = [route.label for route in JSON_ROUTES]


def with_extra(route_label: str, world: World, extra: Any) -> dict[str, Any]:
    return {**body_for(route_named(route_label), world), "extra": extra}


# Levels of the whole body (the body itself is level 1): the bound is 32 (docs/api.md).
# Past Python's recursion limit the JSON cannot be parsed at all, and that is 400.
PARSED_DEPTHS = (33, 34, 100, 500)
UNPARSABLE_DEPTH = 10_000


@pytest.mark.parametrize("label", JSON_LABELS)
async def test_json_nested_past_32_levels_is_refused_on_every_json_route(
    gateway: Client, world: World, label: str
) -> None:
    route = route_named(label)
    for kind in ("object", "array"):
        for depth in PARSED_DEPTHS:
            body = with_extra(label, world, nested(depth - 1, kind))
            reply = await send_json(gateway, route.method, route.target(world), body)
            error = assert_error(reply, 422, "validation_error", (kind, depth))
            [detail] = error["details"]
            # The path to where the 33rd level begins: "extra" and 31 keys or indexes below it.
            assert detail["field"].split(".")[0] == "extra", (kind, depth)
            assert len(detail["field"].split(".")) == 32, (kind, depth)
        text = json.dumps(with_extra(label, world, "__NESTED__"))
        deep = nested_text(UNPARSABLE_DEPTH - 1, kind)
        raw = text.replace('"__NESTED__"', deep).encode()
        assert len(raw) < MAX_BODY_BYTES
        reply = await send_json(gateway, route.method, route.target(world), raw=raw)
        assert_error(reply, 400, "invalid_json", (kind, UNPARSABLE_DEPTH))


@pytest.mark.parametrize(
    ("label", "body"),
    [
        ("POST /api/v1/chat/stream", {"text": "hi", "metadata": {"extras": nested(31)}}),
        (
            "POST /api/v1/batch",
            {"requests": [{"method": "POST", "path": "/api/v1/sessions", "body": nested(30)}]},
        ),
    ],
    ids=["chat metadata extras", "batch item body"],
)
async def test_free_form_json_counts_its_levels_from_the_body(
    gateway: Client, world: World, label: str, body: dict[str, Any]
) -> None:
    route = route_named(label)
    reply = await send_json(gateway, route.method, route.target(world), body)
    assert_error(reply, 422, "validation_error", label)


# Numbers as they appear in a body's text. JSON has no NaN or Infinity; 1e309 is past a double;
# 5,000 digits are past Python's integer conversion limit: none can be read, each is 400.
UNREADABLE_NUMBERS = {
    "nan": "NaN",
    "infinity": "Infinity",
    "minus-infinity": "-Infinity",
    "1e309": "1e309",
    "minus-1e309": "-1e309",
    "5000-digits": "9" * 5000,
}
# Numbers that are JSON and parse: each field answers them as its table entry says.
READABLE_NUMBERS = {"10**400": str(10**400), "minus-zero": "-0", "minus-zero-float": "-0.0"}


@dataclass(frozen=True)
class NumericField:
    """A field that takes a number, or that a client might send one in, and the status each
    readable hostile number gets there."""

    label: str
    name: str
    readable: dict[str, int] = field(default_factory=dict)
    place: str = "top"  # "top": the body's field; "extras": chat metadata; "item": batch

    def body(self, world: World, number: str) -> bytes:
        base = body_for(route_named(self.label), world)
        marker = "__NUMBER__"
        if self.place == "extras":
            base["metadata"] = {"extras": {self.name: marker}}
        elif self.place == "item":
            base["requests"][0][self.name] = marker
        else:
            base[self.name] = marker
        return json.dumps(base).replace(f'"{marker}"', number).encode()


REFUSED = {"10**400": 422, "minus-zero": 422, "minus-zero-float": 422}
NUMERIC_FIELDS = (
    # -0 is the integer zero, and "0" is a valid id: the session is created, or not found.
    NumericField("POST /api/v1/sessions", "id", {**REFUSED, "minus-zero": 201}),
    NumericField("POST /api/sessions", "id", {**REFUSED, "minus-zero": 201}),
    NumericField("POST /api/v1/chat/stream", "conversation_id", {**REFUSED, "minus-zero": 404}),
    NumericField(
        "POST /api/v1/projects/{project}/chat-stream", "session_id", {**REFUSED, "minus-zero": 404}
    ),
    NumericField("POST /api/v1/stream-tickets", "jobId", REFUSED),
    NumericField("POST /v1/chat/completions", "model", REFUSED),
    NumericField("PATCH /api/v1/sessions/{session}", "title", REFUSED),
    # OpenAI's model parameters are taken and ignored: any readable number is fine.
    *(
        NumericField("POST /v1/chat/completions", name, dict.fromkeys(READABLE_NUMBERS, 200))
        for name in ("temperature", "max_tokens", "n", "top_p")
    ),
    # Chat metadata travels in the job, as msgpack: 64-bit integers at most.
    NumericField(
        "POST /api/v1/chat/stream",
        "n",
        {**dict.fromkeys(READABLE_NUMBERS, 200), "10**400": 422},
        "extras",
    ),
    # A field no route knows is ignored, whatever number it holds.
    NumericField("POST /api/v1/chat/stream", "n", dict.fromkeys(READABLE_NUMBERS, 200)),
    # A batch item's id is the caller's own label, echoed back as given.
    NumericField("POST /api/v1/batch", "id", dict.fromkeys(READABLE_NUMBERS, 200), "item"),
)


@pytest.mark.parametrize("numeric", NUMERIC_FIELDS, ids=lambda f: f"{f.label} {f.place}.{f.name}")
async def test_a_huge_or_unreadable_number_in_a_numeric_field_is_refused(
    gateway: Client, world: World, numeric: NumericField
) -> None:
    route = route_named(numeric.label)
    for case, number in UNREADABLE_NUMBERS.items():
        reply = await send_json(
            gateway, route.method, route.target(world), raw=numeric.body(world, number)
        )
        assert_error(reply, 400, "invalid_json", case)
    for case, number in READABLE_NUMBERS.items():
        reply = await send_json(
            gateway, route.method, route.target(world), raw=numeric.body(world, number)
        )
        expected = numeric.readable[case]
        if expected < 400:
            assert reply.status == expected, (case, reply.status, reply.text[:300])
            continue
        code = "not_found" if expected == 404 else "validation_error"
        error = assert_error(reply, expected, code, case)
        if expected == 422 and numeric.place == "top":
            assert error["details"][0]["field"] == numeric.name, case


@pytest.mark.parametrize(
    "value",
    ["1e309", "-1", "0", "101", str(10**400), "-0", "NaN", "Infinity", "1.5", "0x10"],
)
async def test_a_hostile_listing_limit_is_422(gateway: Client, value: str) -> None:
    for prefix in ("/api/v1/sessions", "/api/sessions"):
        reply = await send_json(gateway, "GET", f"{prefix}?limit={value}")
        error = assert_error(reply, 422, "validation_error", (prefix, value))
        assert error["details"][0]["field"] == "limit"


@pytest.mark.parametrize("label", JSON_LABELS)
async def test_a_body_over_max_body_bytes_is_413_with_a_length_or_chunked(
    gateway: Client, world: World, label: str
) -> None:
    route = route_named(label)
    raw = json.dumps(with_extra(label, world, "x" * MAX_BODY_BYTES)).encode()
    for chunked in (False, True):
        reply = await send(
            gateway,
            route.method,
            route.target(world),
            headers={**AUTH, "Content-Type": "application/json"},
            body=raw,
            chunked=chunked,
        )
        assert_error(reply, 413, "payload_too_large", chunked)


BOMB_INFLATED_BYTES = 20_000_000


@functools.cache
def zip_bomb(encoding: str) -> bytes:
    """Under 64 KiB as sent; 20 MB of valid JSON once inflated."""
    inflated = b'{"title": "' + b"a" * BOMB_INFLATED_BYTES + b'"}'
    if encoding == "gzip":
        return gzip.compress(inflated, 9)
    return zlib.compress(inflated, 9)


async def send_encoded(
    gateway: Client, world: World, label: str, encoding: str, body: bytes
) -> Reply:
    route = route_named(label)
    return await send_json(
        gateway,
        route.method,
        route.target(world),
        raw=body,
        headers={"Content-Encoding": encoding},
    )


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_that_inflates_past_the_limit_is_413_without_inflating_it(
    gateway: Client, world: World, encoding: str
) -> None:
    bomb = zip_bomb(encoding)
    assert len(bomb) < MAX_BODY_BYTES
    tracemalloc.start()
    try:
        reply = await send_encoded(gateway, world, "POST /api/v1/sessions", encoding, bomb)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_error(reply, 413, "payload_too_large")
    # The gateway inflated it a step at a time and stopped at the limit: the 20 MB it would
    # have made never existed at once (client and server share this process).
    assert peak_bytes < BOMB_INFLATED_BYTES // 4, peak_bytes
    for label in JSON_LABELS:
        reply = await send_encoded(gateway, world, label, encoding, bomb)
        assert_error(reply, 413, "payload_too_large", label)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_that_does_not_inflate_is_400(
    gateway: Client, world: World, encoding: str
) -> None:
    for label in JSON_LABELS:
        reply = await send_encoded(gateway, world, label, encoding, b"not compressed at all")
        assert_error(reply, 400, "invalid_json", label)


async def test_a_small_compressed_body_is_read_as_json(gateway: Client, world: World) -> None:
    for encoding, compress in (("gzip", gzip.compress), ("deflate", zlib.compress)):
        reply = await send_encoded(
            gateway, world, "POST /api/v1/sessions", encoding, compress(b'{"title": "packed"}')
        )
        assert reply.status == 201, (encoding, reply.text)
        assert reply.json()["title"] == "packed"


@pytest.mark.parametrize("encoding", ["br", "zstd"])
async def test_a_body_in_an_encoding_without_a_decoder_is_400(
    gateway: Client, world: World, encoding: str
) -> None:
    """aiohttp decodes brotli and zstd only with optional packages chatstream does not
    install: its parser refuses the request (plain-text 400) before the gateway sees it."""
    reply = await send_encoded(gateway, world, "POST /api/v1/sessions", encoding, b"\x00\x01")
    assert reply.status == 400, reply.text
