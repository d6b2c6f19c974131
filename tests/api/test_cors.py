"""CORS: only the configured origins, including the preflight of a streaming POST with a token."""

from __future__ import annotations

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory
from tests.support.sse import job_events, parse_sse

Client = TestClient[web.Request, web.Application]

ALLOWED = "https://app.example.test"
OTHER = "https://evil.example.test"


def preflight_headers(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, last-event-id",
    }


def assert_no_cors(response: ClientResponse) -> None:
    assert not any(h.lower().startswith("access-control-") for h in response.headers)


async def cors_gateway(start_gateway: GatewayFactory, connections: ConnectionSettings) -> Client:
    return await start_gateway(connections, cors_origins=(ALLOWED, "http://localhost:5173"))


async def test_preflight_of_a_streaming_post_with_a_token_is_allowed(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await cors_gateway(start_gateway, connections)
    response = await client.options("/api/v1/chat/stream", headers=preflight_headers(ALLOWED))
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type", "last-event-id"} <= allowed
    assert "Access-Control-Allow-Credentials" not in response.headers


async def test_the_stream_itself_carries_cors_headers_and_exposes_its_ids(
    connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker
) -> None:
    client = await cors_gateway(start_gateway, connections)
    if not connections.embedded:
        await start_worker(connections)
    response = await client.post(
        "/api/v1/chat/stream",
        json={"text": "cross origin", "pipeline": "echo"},
        headers={**AUTH, "Origin": ALLOWED},
    )
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Job-Id", "X-Session-Id", "X-Request-ID"} <= exposed
    assert "Origin" in response.headers.getall("Vary")
    events = job_events(parse_sse(await response.read()))
    assert events[-1]["content"] == "cross origin"


async def test_an_error_reply_to_an_allowed_origin_is_readable(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await cors_gateway(start_gateway, connections)
    response = await client.get("/api/v1/sessions", headers={"Origin": ALLOWED})
    assert response.status == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_a_disallowed_origin_gets_no_cors_headers(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await cors_gateway(start_gateway, connections)
    preflight = await client.options("/api/v1/chat/stream", headers=preflight_headers(OTHER))
    assert preflight.status == 403
    assert_no_cors(preflight)
    response = await client.get("/api/v1/sessions", headers={**AUTH, "Origin": OTHER})
    assert response.status == 200
    assert_no_cors(response)


async def test_without_configured_origins_there_is_no_cors(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await start_gateway(connections)
    preflight = await client.options("/api/v1/chat/stream", headers=preflight_headers(ALLOWED))
    assert preflight.status == 405
    assert_no_cors(preflight)
    response = await client.get("/api/v1/sessions", headers={**AUTH, "Origin": ALLOWED})
    assert response.status == 200
    assert_no_cors(response)


async def test_preflight_of_a_path_with_an_id_and_of_the_openai_face(
    connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    client = await cors_gateway(start_gateway, connections)
    for path, method in (
        ("/api/v1/sessions/123", "DELETE"),
        ("/api/v1/streams/some-job", "GET"),
        ("/v1/chat/completions", "POST"),
    ):
        response = await client.options(path, headers=preflight_headers(ALLOWED, method))
        assert response.status == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
