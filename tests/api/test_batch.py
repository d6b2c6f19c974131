"""POST /api/v1/batch and /api/batch: requests run through the real routes, in order."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import create_app
from shared.settings import PIPELINES, ConnectionSettings
from tests.conftest import (
    AUTH,
    OTHER_AUTH,
    GatewayFactory,
    WorkerFactory,
    gateway_settings,
)

Client = TestClient[web.Request, web.Application]

BATCH_PATHS = ("/api/v1/batch", "/api/batch")


async def run_batch(
    client: Client, requests: list[dict[str, Any]], headers: dict[str, str] = AUTH
) -> list[dict[str, Any]]:
    response = await client.post("/api/v1/batch", json={"requests": requests}, headers=headers)
    assert response.status == 200, await response.text()
    reply = await response.json()
    assert reply["success"] is True
    assert reply["data"]["count"] == len(requests) == len(reply["data"]["responses"])
    responses: list[dict[str, Any]] = reply["data"]["responses"]
    return responses


async def create_session(client: Client, title: str, headers: dict[str, str] = AUTH) -> str:
    response = await client.post("/api/v1/sessions", json={"title": title}, headers=headers)
    assert response.status == 201
    session_id: str = (await response.json())["id"]
    return session_id


async def test_twenty_mixed_requests_answer_in_order_and_one_failure_fails_alone(
    gateway: Client,
) -> None:
    existing = await create_session(gateway, "before the batch")
    bobs = await create_session(gateway, "bob's", headers=OTHER_AUTH)
    requests: list[dict[str, Any]] = [
        {"id": "create-1", "method": "POST", "path": "/api/v1/sessions", "body": {"title": "one"}},
        {"id": "create-2", "method": "post", "path": "/api/sessions", "body": {"id": 4242}},
        {"id": "list", "method": "GET", "path": "/api/v1/sessions?limit=100"},
        {"id": "get", "method": "GET", "path": f"/api/v1/sessions/{existing}"},
        {"id": "messages", "method": "GET", "path": f"/api/v1/sessions/{existing}/messages"},
        {"id": "bobs", "method": "GET", "path": f"/api/v1/sessions/{bobs}"},
        {"id": "bad-title", "method": "PATCH", "path": f"/api/v1/sessions/{existing}",
         "body": {"title": ""}},
        {"id": "no-route", "method": "GET", "path": "/api/v1/nothing-here"},
        {"id": "wrong-method", "method": "PUT", "path": "/api/v1/sessions"},
        {"id": "models", "method": "GET", "path": "/v1/models"},
        {"id": "health", "method": "GET", "path": "/healthz"},
        {"id": "no-body", "method": "POST", "path": "/api/v1/sessions"},
        {"id": "bad-limit", "method": "GET", "path": "/api/v1/sessions?limit=0"},
        {"id": "completion", "method": "POST", "path": "/v1/chat/completions",
         "body": {"model": "echo", "messages": [{"role": "user", "content": "in a batch"}]}},
        {"id": "unknown-model", "method": "POST", "path": "/v1/chat/completions",
         "body": {"model": "nope", "messages": [{"role": "user", "content": "hi"}]}},
        {"id": 16, "method": "POST", "path": "/api/v1/sessions", "body": {"title": "three"}},
        {"id": "bad-id", "method": "POST", "path": "/api/v1/sessions", "body": {"id": "x y"}},
        {"method": "GET", "path": "/api/v1/sessions/999999999"},
        {"id": "stream", "method": "POST", "path": "/api/v1/chat/stream", "body": {"text": "x"}},
        {"id": "rename", "method": "PATCH", "path": f"/api/v1/sessions/{existing}",
         "body": {"title": "renamed in a batch"}},
    ]  # fmt: skip
    assert len(requests) == 20
    responses = await run_batch(gateway, requests)

    assert [r["id"] for r in responses] == [r.get("id") for r in requests]
    statuses = [r["status"] for r in responses]
    assert statuses == [
        201, 201, 200, 200, 200, 404, 422, 404, 405, 200,
        200, 415, 422, 200, 404, 201, 422, 404, 400, 200,
    ]  # fmt: skip
    by_id = {r["id"]: r for r in responses}
    for response in responses:
        assert ("data" in response) != ("error" in response)
        if response["status"] >= 400:
            assert set(response["error"]) == {"code", "message", "details"}
    assert by_id["create-1"]["data"]["title"] == "one"
    assert by_id["create-2"]["data"]["id"] == "4242"
    assert by_id["get"]["data"]["id"] == existing
    assert by_id["messages"]["data"] == {"messages": []}
    assert by_id["bobs"]["error"]["code"] == "not_found"
    assert by_id["bad-title"]["error"]["details"][0]["field"] == "title"
    assert by_id["wrong-method"]["error"]["code"] == "method_not_allowed"
    assert [m["id"] for m in by_id["models"]["data"]["data"]] == list(PIPELINES)
    assert by_id["no-body"]["error"]["code"] == "unsupported_media_type"
    completion = by_id["completion"]["data"]
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "in a batch"
    assert by_id["unknown-model"]["error"]["code"] == "not_found"
    assert by_id[16]["data"]["title"] == "three"
    assert by_id["stream"]["error"]["code"] == "not_batchable"
    assert by_id["rename"]["data"]["title"] == "renamed in a batch"

    # What the batch did is there afterwards, as if each request had been sent on its own.
    listed = await gateway.get("/api/v1/sessions?limit=100", headers=AUTH)
    titles = {s["title"] for s in (await listed.json())["sessions"]}
    assert {"one", "three", "renamed in a batch"} <= titles
    bob = await gateway.get(f"/api/v1/sessions/{bobs}", headers=OTHER_AUTH)
    assert (await bob.json())["title"] == "bob's"


@pytest.mark.parametrize("path", BATCH_PATHS)
async def test_twenty_one_requests_are_refused_whole(gateway: Client, path: str) -> None:
    session_count_before = await _session_count(gateway)
    requests = [{"method": "POST", "path": "/api/v1/sessions", "body": {}}] * 21
    response = await gateway.post(path, json={"requests": requests}, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "batch_too_large"
    assert await _session_count(gateway) == session_count_before


async def _session_count(client: Client) -> int:
    response = await client.get("/api/v1/sessions?limit=100", headers=AUTH)
    return len((await response.json())["sessions"])


@pytest.mark.parametrize("path", BATCH_PATHS)
async def test_an_empty_batch_counts_zero(gateway: Client, path: str) -> None:
    before_ms = int(time.time() * 1000)
    response = await gateway.post(path, json={"requests": []}, headers=AUTH)
    assert response.status == 200
    reply = await response.json()
    assert reply["success"] is True
    assert reply["data"]["responses"] == [] and reply["data"]["count"] == 0
    assert before_ms <= reply["data"]["timestamp"] <= int(time.time() * 1000)


async def test_streaming_routes_and_nested_batches_are_refused_per_item(gateway: Client) -> None:
    session_id = await create_session(gateway, "streams")
    before = await _session_count(gateway)
    requests: list[dict[str, Any]] = [
        {"id": "seed-002", "method": "POST",
         "path": f"/api/v1/sessions/{session_id}/messages/stream",
         "body": {"content": "hi", "pipeline": "echo"}},
        {"id": "seed-002-alias", "method": "POST",
         "path": f"/api/sessions/{session_id}/messages/stream", "body": {"content": "hi"}},
        {"id": "seed-004", "method": "POST", "path": "/api/v1/chat/stream", "body": {"text": "hi"}},
        {"id": "seed-000", "method": "GET", "path": "/api/v1/question/stream?question=hi"},
        {"id": "seed-001", "method": "GET", "path": "/api/question/stream?question=hi"},
        {"id": "seed-003", "method": "POST", "path": "/api/v1/projects/docs/chat-stream",
         "body": {"message": "hi"}},
        {"id": "attach", "method": "GET", "path": "/api/v1/streams/some-job"},
        {"id": "openai-stream", "method": "POST", "path": "/v1/chat/completions",
         "body": {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "x"}]}},
        {"id": "nested", "method": "POST", "path": "/api/v1/batch", "body": {"requests": []}},
        {"id": "nested-alias", "method": "POST", "path": "/api/batch", "body": {"requests": []}},
        {"id": "fine", "method": "GET", "path": f"/api/v1/sessions/{session_id}/messages"},
    ]  # fmt: skip
    responses = await run_batch(gateway, requests)
    assert [r["status"] for r in responses] == [400] * 10 + [200]
    assert all(r["error"]["code"] == "not_batchable" for r in responses[:10])
    # None of the refused streams ran: no message stored, no session created.
    assert responses[10]["data"] == {"messages": []}
    assert await _session_count(gateway) == before


async def test_each_item_runs_with_the_callers_own_authentication(gateway: Client) -> None:
    alices = await create_session(gateway, "alice's")
    requests = [
        {"id": "read", "method": "GET", "path": f"/api/v1/sessions/{alices}"},
        {"id": "rename", "method": "PATCH", "path": f"/api/v1/sessions/{alices}",
         "body": {"title": "taken"}},
        {"id": "delete", "method": "DELETE", "path": f"/api/v1/sessions/{alices}"},
        {"id": "messages", "method": "GET", "path": f"/api/v1/sessions/{alices}/messages"},
        {"id": "claim", "method": "POST", "path": "/api/v1/sessions", "body": {"id": alices}},
        {"id": "job", "method": "POST", "path": "/api/v1/streams/some-job/cancel"},
    ]  # fmt: skip
    responses = await run_batch(gateway, requests, headers=OTHER_AUTH)
    assert [r["status"] for r in responses] == [404, 404, 404, 404, 409, 404]
    mine = await gateway.get(f"/api/v1/sessions/{alices}", headers=AUTH)
    assert (await mine.json())["title"] == "alice's"
    own = await run_batch(gateway, [{"method": "DELETE", "path": f"/api/v1/sessions/{alices}"}])
    assert own == [{"id": None, "status": 204, "data": None}]


async def test_a_batch_needs_a_token_and_a_valid_body(gateway: Client) -> None:
    anonymous = await gateway.post("/api/v1/batch", json={"requests": []})
    assert anonymous.status == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    for body in ({}, {"requests": "no"}, {"requests": [{"method": "GET"}]},
                 {"requests": [{"method": "no such", "path": "/healthz"}]},
                 {"requests": [{"method": "GET", "path": "http://elsewhere/"}]},
                 {"requests": [{"method": "GET", "path": "//elsewhere/x"}]}):  # fmt: skip
        response = await gateway.post("/api/v1/batch", json=body, headers=AUTH)
        assert response.status == 422, body
        assert (await response.json())["error"]["code"] == "validation_error"
    not_json = await gateway.post(
        "/api/v1/batch", data="[", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert not_json.status == 400


async def test_the_requests_of_a_batch_run_concurrently(
    connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    """Two slow completions in one batch: both jobs start before either finishes (the order
    of the worker's log lines, not a clock, shows it)."""
    slow = {"echo_token_delay_ms": 200}
    gateway = await start_gateway(connections, worker=slow)
    if not connections.embedded:
        await start_worker(connections, **slow)
    completion = {"model": "echo", "messages": [{"role": "user", "content": "one two three"}]}
    item = {"method": "POST", "path": "/v1/chat/completions", "body": completion}
    with structlog.testing.capture_logs() as logs:
        responses = await run_batch(gateway, [item, item])
        # The worker logs a job's end only after it published the `end` the batch waited for.
        for _ in range(500):
            if sum(1 for line in logs if line["event"] == "job.finished") == 2:
                break
            await asyncio.sleep(0.01)
    assert [r["status"] for r in responses] == [200, 200]
    job_lines = [line["event"] for line in logs if line["event"] in ("job.started", "job.finished")]
    assert job_lines == ["job.started", "job.started", "job.finished", "job.finished"]


async def test_a_stream_not_known_as_one_is_stopped_before_it_reaches_the_socket(
    connections: ConnectionSettings, aiohttp_client: Any
) -> None:
    app = create_app(gateway_settings(connections))

    async def surprise_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: this must not leak into the batch reply\n\n")
        return response

    app.router.add_get("/api/v1/surprise-stream", surprise_stream)
    client: Client = await aiohttp_client(app)
    response = await client.post(
        "/api/v1/batch",
        json={"requests": [{"method": "GET", "path": "/api/v1/surprise-stream"}]},
        headers=AUTH,
    )
    assert response.status == 200
    raw = await response.read()
    assert b"must not leak" not in raw
    [item] = (await response.json())["data"]["responses"]
    assert item["status"] == 400 and item["error"]["code"] == "not_batchable"


async def test_odd_paths_fail_as_their_own_items(gateway: Client) -> None:
    paths = [
        "/no-such-page",
        "/%",
        "/a b",
        "/api/v1/sessions/%zz",
        "/api/v1/sessions?limit=%",
        "/[::1]",
    ]
    responses = await run_batch(gateway, [{"method": "GET", "path": p} for p in paths])
    assert [r["status"] for r in responses] == [404, 404, 404, 404, 422, 404]


async def test_an_item_with_a_method_its_route_does_not_take_fails_alone(gateway: Client) -> None:
    responses = await run_batch(
        gateway,
        [
            {"id": "odd", "method": "TRACE", "path": "/healthz"},
            {"id": "ok", "method": "GET", "path": "/healthz"},
        ],
    )
    assert [r["status"] for r in responses] == [405, 200]
    assert responses[0]["error"]["code"] == "method_not_allowed"
