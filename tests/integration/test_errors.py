"""The error bodies of docs/api.md: 400, 401, 404, 405, 413, 415 and 422, and their order."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, GatewayFactory

Client = TestClient[web.Request, web.Application]

STREAM = "/api/v1/chat/stream"


@pytest.fixture
async def client(connections, start_gateway: GatewayFactory) -> Client:
    return await start_gateway(connections, max_body_bytes=2048)


async def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"   ", b"[1, 2]", b'"text"', b"\xff\xfe"],
    ids=["broken", "empty", "blank", "array", "string", "not-utf8"],
)
async def test_a_body_that_is_not_a_json_object_is_400(client: Client, raw: bytes) -> None:
    response = await client.post(
        STREAM, data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    await error_of(response, 400, "invalid_json")


async def test_no_token_is_401_with_www_authenticate(client: Client) -> None:
    response = await client.post(STREAM, json={"text": "hi"})
    await error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_wrong_token_is_401(client: Client) -> None:
    response = await client.post(
        STREAM, json={"text": "hi"}, headers={"Authorization": "Bearer nope"}
    )
    await error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_an_oversized_body_is_413(client: Client) -> None:
    response = await client.post(STREAM, json={"text": "x" * 4096}, headers=AUTH)
    await error_of(response, 413, "payload_too_large")


async def test_another_content_type_is_415(client: Client) -> None:
    response = await client.post(
        STREAM, data=b'{"text": "hi"}', headers={**AUTH, "Content-Type": "text/plain"}
    )
    await error_of(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "   "}, "text"),
        ({}, "text"),
        ({"text": 42}, "text"),
        ({"text": "hi", "pipeline": "nope"}, "pipeline"),
    ],
    ids=["blank", "missing", "not-a-string", "unknown-pipeline"],
)
async def test_an_invalid_field_is_422_with_details(
    client: Client, body: dict[str, Any], field: str
) -> None:
    response = await client.post(STREAM, json=body, headers=AUTH)
    error = await error_of(response, 422, "validation_error")
    assert {"field": field, "message": error["details"][0]["message"]} in error["details"]


async def test_text_over_16000_characters_is_422() -> None:
    from gateway.body import validate
    from gateway.errors import ApiError
    from gateway.schemas import ChatStreamBody

    with pytest.raises(ApiError) as caught:
        validate(ChatStreamBody, {"text": "x" * 16_001}, pipelines=("echo",))
    assert caught.value.status == 422
    assert validate(ChatStreamBody, {"text": f"  {'x' * 16_000}  "}, pipelines=("echo",)).text


async def test_unknown_route_is_404_even_without_token(client: Client) -> None:
    await error_of(await client.get("/api/v1/nowhere"), 404, "not_found")


async def test_wrong_method_is_405_with_allow_even_without_token(client: Client) -> None:
    response = await client.get(STREAM)
    await error_of(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


async def test_health_needs_no_token(client: Client) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"redis": True, "queue": True}


async def test_metadata_with_a_number_too_big_for_msgpack_is_422_not_500(client: Client) -> None:
    response = await client.post(
        STREAM,
        json={"text": "hi", "metadata": {"extras": {"n": [1, {"deep": 2**70}]}}},
        headers=AUTH,
    )
    error = await error_of(response, 422, "validation_error")
    assert error["details"][0]["field"] == "metadata.extras"


async def test_json_nested_too_deeply_is_400_not_500(gateway: Client) -> None:
    raw = b"[" * 20_000 + b"]" * 20_000  # 40 KB: within the default body limit
    for path in (STREAM, "/api/v1/sessions", "/api/v1/batch"):
        response = await gateway.post(
            path, data=raw, headers={**AUTH, "Content-Type": "application/json"}
        )
        await error_of(response, 400, "invalid_json")


def nested(levels: int) -> Any:
    """A JSON value of ``levels`` levels of objects."""
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


async def test_metadata_nested_300_deep_is_422_not_500(gateway: Client) -> None:
    from tests.support.sse import job_events, parse_sse

    body = {"text": "hi", "pipeline": "echo", "metadata": {"extras": nested(300)}}
    response = await gateway.post(STREAM, json=body, headers=AUTH)
    error = await error_of(response, 422, "validation_error")
    [detail] = error["details"]
    assert detail["field"].startswith("metadata.extras.a.a") and "32 levels" in detail["message"]
    # The body, metadata and extras are three levels: 29 more reach the bound, and stream.
    body["metadata"] = {"extras": nested(30)}
    response = await gateway.post(STREAM, json=body, headers=AUTH)
    assert response.status == 200
    assert job_events(parse_sse(await response.read()))[-1]["type"] == "end"
    body["metadata"] = {"extras": nested(31)}
    await error_of(await gateway.post(STREAM, json=body, headers=AUTH), 422, "validation_error")


async def test_every_json_route_bounds_nesting_at_32_levels(gateway: Client) -> None:
    too_deep = nested(33)
    for path, body in (
        ("/api/v1/sessions", {"title": "t", "extra": too_deep}),
        ("/api/v1/batch", {"requests": [{"method": "GET", "path": "/healthz", "body": too_deep}]}),
        ("/v1/chat/completions", {"model": "echo", "messages": [], "extra": too_deep}),
        ("/api/v1/stream-tickets", {"jobId": "x", "extra": too_deep}),
    ):
        response = await gateway.post(path, json=body, headers=AUTH)
        error = await error_of(response, 422, "validation_error")
        assert error["details"][0]["field"].split(".")[0] in {"extra", "requests"}, path


async def test_a_lone_surrogate_in_the_text_is_rejected_not_500(client: Client) -> None:
    raw = b'{"text": "a\\ud800b", "pipeline": "echo"}'
    response = await client.post(
        STREAM, data=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    await error_of(response, 400, "invalid_json")
