"""CORS from origins that are not allowed: near misses of the allowed one, ``null`` (sandboxed
frames, ``file:`` pages) and a wildcard. None gets an ``Access-Control-Allow-Origin``, and
each preflight is refused with 403 ``forbidden``."""

from __future__ import annotations

import pytest

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, GatewayFactory
from tests.security.support import Client, Reply, assert_error, send

ALLOWED = "https://app.example.test"
REFUSED_ORIGINS = {
    "other-site": "https://evil.example.test",
    "null": "null",
    "wildcard": "*",
    "suffix-added": "https://app.example.test.evil.test",
    "prefix-added": "https://evil-app.example.test",
    "other-scheme": "http://app.example.test",
    "other-port": "https://app.example.test:8443",
    "trailing-slash": "https://app.example.test/",
    "with-userinfo": "https://app.example.test@evil.example.test",
}
# A simple request and the preflight of each kind of route: JSON, streaming, OpenAI, an id.
PREFLIGHTS = (
    ("/api/v1/sessions", "POST"),
    ("/api/v1/chat/stream", "POST"),
    ("/api/v1/streams/some-job", "GET"),
    ("/v1/chat/completions", "POST"),
    ("/api/v1/sessions/123", "DELETE"),
)


@pytest.fixture
async def cors_gateway(namespace: str, start_gateway: GatewayFactory) -> Client:
    return await start_gateway(ConnectionSettings(namespace=namespace), cors_origins=(ALLOWED,))


def assert_no_cors(reply: Reply, label: object) -> None:
    granted = [name for name in reply.headers if name.lower().startswith("access-control-")]
    assert not granted, (label, granted)


def preflight(origin: str, method: str) -> dict[str, str | bytes]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type",
    }


async def test_a_disallowed_origin_gets_no_cors_headers_and_its_preflight_is_403(
    cors_gateway: Client,
) -> None:
    for case, origin in REFUSED_ORIGINS.items():
        reply = await send(
            cors_gateway, "GET", "/api/v1/sessions", headers={**AUTH, "Origin": origin}
        )
        assert reply.status == 200, case
        assert_no_cors(reply, case)
        for path, method in PREFLIGHTS:
            reply = await send(cors_gateway, "OPTIONS", path, headers=preflight(origin, method))
            assert_error(reply, 403, "forbidden", (case, path))
            assert_no_cors(reply, (case, path))


async def test_the_allowed_origin_is_granted_exactly(cors_gateway: Client) -> None:
    """The control: the refusals above are for the origin, not for the routes."""
    for path, method in PREFLIGHTS:
        reply = await send(cors_gateway, "OPTIONS", path, headers=preflight(ALLOWED, method))
        assert reply.status == 200, path
        assert reply.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "Access-Control-Allow-Credentials" not in reply.headers


async def test_an_error_reply_to_a_disallowed_origin_is_not_readable(cors_gateway: Client) -> None:
    for case, origin in REFUSED_ORIGINS.items():
        reply = await send(cors_gateway, "GET", "/api/v1/sessions", headers={"Origin": origin})
        assert_error(reply, 401, "unauthorized", case)
        assert_no_cors(reply, case)
