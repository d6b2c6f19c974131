"""Every response carries ``X-Content-Type-Options: nosniff``; every JSON one, success or error,
``Cache-Control: no-store``; a stream keeps docs/api.md's ``no-cache``."""

from __future__ import annotations

from typing import Any

from tests.conftest import AUTH
from tests.support.chat import Client, create_session


def assert_json_headers(response: Any, label: str) -> None:
    assert response.content_type == "application/json", label
    assert response.headers["X-Content-Type-Options"] == "nosniff", label
    assert response.headers["Cache-Control"] == "no-store", label


async def test_json_responses_carry_nosniff_and_no_store(gateway: Client) -> None:
    sid = await create_session(gateway)
    completion = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
    batch = {"requests": [{"method": "GET", "path": f"/api/v1/sessions/{sid}"}]}
    calls = {
        "created": gateway.post("/api/v1/sessions", json={}, headers=AUTH),
        "read": gateway.get(f"/api/v1/sessions/{sid}", headers=AUTH),
        "listed": gateway.get("/api/v1/sessions", headers=AUTH),
        "messages": gateway.get(f"/api/v1/sessions/{sid}/messages", headers=AUTH),
        "batch": gateway.post("/api/v1/batch", json=batch, headers=AUTH),
        "openai": gateway.post("/v1/chat/completions", json=completion, headers=AUTH),
        "models": gateway.get("/v1/models", headers=AUTH),
        "healthz": gateway.get("/healthz"),
        "readyz": gateway.get("/readyz"),
        "openapi": gateway.get("/api/v1/openapi.json"),
        "401": gateway.get("/api/v1/sessions"),
        "404": gateway.get("/api/v1/sessions/123", headers=AUTH),
        "404-route": gateway.get("/api/v1/nowhere", headers=AUTH),
        "405": gateway.put("/api/v1/sessions", headers=AUTH),
        "415": gateway.post("/api/v1/sessions", data=b"{}", headers=AUTH),
        "422": gateway.post("/api/v1/sessions", json={"id": "x"}, headers=AUTH),
        "400": gateway.post(
            "/api/v1/sessions", data=b"{", headers={**AUTH, "Content-Type": "application/json"}
        ),
    }
    for label, call in calls.items():
        async with call as response:
            assert_json_headers(response, label)
    delete = await gateway.delete(f"/api/v1/sessions/{sid}", headers=AUTH)
    assert delete.status == 204 and delete.headers["X-Content-Type-Options"] == "nosniff"


async def test_streams_keep_no_cache_and_carry_nosniff(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "a b", "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200 and response.content_type == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    await response.read()


async def test_pages_and_metrics_carry_nosniff(gateway: Client) -> None:
    for path in ("/", "/metrics"):
        response = await gateway.get(path)
        assert response.status == 200, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
