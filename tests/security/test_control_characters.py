"""Control characters (NUL, CR, LF, TAB, DEL, C1, U+2028) in every id a route takes, in its
path, its query or its body, and in the headers the gateway reads: each is the documented 4xx,
and none reaches a resource by being trimmed off (Alice's own id with a character appended is
not her id)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import AUTH
from tests.security.support import (
    CONTROL_CHARACTERS,
    JSON_ROUTES,
    Client,
    Reply,
    World,
    assert_error,
    assert_refused_by_the_parser,
    body_for,
    path_segment,
    path_slot_cases,
    query,
    route_named,
    send,
    send_json,
)


def hostile_ids(valid: str) -> Iterator[tuple[str, str]]:
    """``valid`` with each control character after, before and inside it, and alone."""
    middle = len(valid) // 2
    for name, char in CONTROL_CHARACTERS.items():
        yield f"{name}-after", valid + char
        yield f"{name}-before", char + valid
        yield f"{name}-inside", valid[:middle] + char + valid[middle:]
        yield f"{name}-alone", char


async def assert_alices_things_are_untouched(gateway: Client, world: World) -> None:
    session = await gateway.get(f"/api/v1/sessions/{world.session_id}", headers=AUTH)
    assert session.status == 200
    assert (await session.json())["messageCount"] == 2
    documents = await gateway.get(f"/api/v1/projects/{world.project}/documents", headers=AUTH)
    assert [d["id"] for d in (await documents.json())["documents"]] == [world.document_id]


@pytest.mark.parametrize(("label", "slot"), list(path_slot_cases()))
async def test_a_control_character_in_a_path_id_is_404(
    gateway: Client, world: World, label: str, slot: str
) -> None:
    route = route_named(label)
    for case, value in hostile_ids(world.slots()[slot]):
        target = route.target(world, **{slot: path_segment(value)})
        body = body_for(route, world) if route.body is not None else None
        reply = await send_json(gateway, route.method, target, body)
        assert_error(reply, 404, "not_found", (label, case))
    await assert_alices_things_are_untouched(gateway, world)


@dataclass(frozen=True)
class Slot:
    """Where a route takes an id outside its path, and what a hostile one gets."""

    label: str
    where: str  # "query" or "body"
    name: str
    status: int
    code: str
    valid: str = "session"  # which of Alice's resources the valid value is
    authenticated: bool = True

    def value_of(self, world: World) -> str:
        return world.slots().get(self.valid, self.valid)


QUERY_AND_BODY_SLOTS = (
    Slot("GET /api/v1/question/stream", "query", "session_id", 422, "validation_error"),
    Slot("GET /api/question/stream", "query", "session_id", 422, "validation_error"),
    Slot("GET /api/v1/sessions", "query", "cursor", 422, "validation_error", valid="c0ffee"),
    Slot("GET /api/v1/streams/{job}", "query", "lastEventId", 422, "validation_error", "3"),
    Slot("GET /api/v1/streams/{job}", "query", "ticket", 401, "unauthorized", "t.t.t", False),
    Slot("POST /api/v1/sessions", "body", "id", 422, "validation_error"),
    Slot("POST /api/sessions", "body", "id", 422, "validation_error"),
    Slot("POST /api/v1/chat/stream", "body", "conversation_id", 422, "validation_error"),
    Slot(
        "POST /api/v1/projects/{project}/chat-stream", "body", "session_id", 422, "validation_error"
    ),
    Slot("POST /api/v1/stream-tickets", "body", "jobId", 404, "not_found", valid="job"),
    Slot("POST /v1/chat/completions", "body", "model", 404, "not_found", valid="model"),
)


@pytest.mark.parametrize("slot", QUERY_AND_BODY_SLOTS, ids=lambda s: f"{s.label} {s.name}")
async def test_a_control_character_in_a_query_or_body_id_is_refused(
    gateway: Client, world: World, slot: Slot
) -> None:
    route = route_named(slot.label)
    for case, value in hostile_ids(slot.value_of(world)):
        if slot.where == "query":
            target = route.target(world).split("?")[0] + query({**route.params, slot.name: value})
            body = body_for(route, world) if route.body is not None else None
        else:
            target = route.target(world)
            body = {**body_for(route, world), slot.name: value}
        reply = await send_json(
            gateway, route.method, target, body, auth=AUTH if slot.authenticated else None
        )
        error = assert_error(reply, slot.status, slot.code, (slot.label, case))
        if slot.code == "validation_error":
            assert [d["field"] for d in error["details"]] == [slot.name], (slot.label, case)
    await assert_alices_things_are_untouched(gateway, world)


@pytest.mark.parametrize("batch", [r.path for r in JSON_ROUTES if r.path.endswith("batch")])
async def test_a_control_character_in_a_batch_items_path_is_422_or_that_items_404(
    gateway: Client, world: World, batch: str
) -> None:
    for case, value in hostile_ids(world.session_id):
        items = [
            {"id": case, "method": method, "path": f"/api/v1/sessions/{value}"}
            for method in ("GET", "DELETE")
        ]
        reply = await send_json(gateway, "POST", batch, {"requests": items})
        if any(ord(char) < 0x20 for char in value):
            # The item's path is refused whole: no C0 control character reaches the router.
            error = assert_error(reply, 422, "validation_error", case)
            assert {d["field"] for d in error["details"]} == {
                "requests.0.path",
                "requests.1.path",
            }
            continue
        assert reply.status == 200, (case, reply.text)
        for item in reply.json()["data"]["responses"]:
            assert item["status"] == 404 and item["error"]["code"] == "not_found", (case, item)
    await assert_alices_things_are_untouched(gateway, world)


async def test_a_control_character_in_a_batch_items_id_comes_back_escaped(
    gateway: Client,
) -> None:
    """An item's ``id`` is the caller's own label, echoed back: it names no resource."""
    for name, char in CONTROL_CHARACTERS.items():
        label = f"a{char}b"
        reply = await send_json(
            gateway,
            "POST",
            "/api/v1/batch",
            {"requests": [{"id": label, "method": "GET", "path": "/healthz"}]},
        )
        assert reply.status == 200, (name, reply.text)
        assert reply.json()["data"]["responses"][0]["id"] == label, name


def header_values(valid: str) -> Iterator[tuple[str, bytes]]:
    """``valid`` with each control character inside it, and after it where HTTP does not
    make it part of the syntax: a trailing CR or LF ends the line and a trailing TAB is
    whitespace around the value (RFC 9110), which the parser drops."""
    middle = len(valid) // 2
    for name, char in CONTROL_CHARACTERS.items():
        encoded = char.encode()
        yield f"{name}-inside", (valid[:middle] + char + valid[middle:]).encode()
        if char not in ("\r", "\n", "\r\n", "\t"):
            yield f"{name}-after", valid.encode() + encoded


def assert_parser_or(reply: Reply, label: object, check: Any) -> None:
    """Refused by aiohttp's parser (a plain-text 400), or answered by the app as ``check``
    says; never a 5xx."""
    assert reply.status < 500, (label, reply.status, reply.text)
    if reply.status == 400 and reply.content_type == "text/plain":
        assert_refused_by_the_parser(reply, label)
        return
    check(reply, label)


REQUEST_ID = "req-0123456789"


async def test_a_control_character_in_x_request_id_is_replaced_not_echoed(
    gateway: Client,
) -> None:
    def fresh_id(reply: Reply, label: object) -> None:
        assert reply.status == 200, label
        echoed = reply.headers["X-Request-ID"]
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", echoed), label
        assert not echoed.startswith(REQUEST_ID[:5]), label

    for case, value in header_values(REQUEST_ID):
        reply = await send(gateway, "GET", "/healthz", headers={"X-Request-ID": value})
        assert_parser_or(reply, case, fresh_id)


async def test_a_control_character_in_authorization_is_401(gateway: Client) -> None:
    def unauthorized(reply: Reply, label: object) -> None:
        assert_error(reply, 401, "unauthorized", label)

    token = AUTH["Authorization"].removeprefix("Bearer ")
    for case, value in header_values(token):
        for route in ("/api/v1/sessions", "/v1/models"):
            reply = await send(gateway, "GET", route, headers={"Authorization": b"Bearer " + value})
            assert_parser_or(reply, (case, route), unauthorized)


async def test_a_control_character_in_last_event_id_is_422(gateway: Client, world: World) -> None:
    def invalid(reply: Reply, label: object) -> None:
        error = assert_error(reply, 422, "validation_error", label)
        assert error["details"][0]["field"] == "lastEventId", label

    for case, value in header_values("12"):
        reply = await send(
            gateway,
            "GET",
            f"/api/v1/streams/{world.job_id}",
            headers={**AUTH, "Last-Event-ID": value},
        )
        assert_parser_or(reply, case, invalid)


async def test_raw_control_characters_in_the_request_line_are_refused_by_the_parser(
    gateway: Client, world: World
) -> None:
    for name, char in CONTROL_CHARACTERS.items():
        if not char.isascii():
            continue
        target = f"/api/v1/sessions/{world.session_id}{char}x".encode()
        reply = await send(gateway, "GET", target, headers=AUTH)
        # A TAB or DEL that the parser lets through still names no session.
        if reply.status == 404:
            assert_error(reply, 404, "not_found", name)
        else:
            assert_refused_by_the_parser(reply, name)
