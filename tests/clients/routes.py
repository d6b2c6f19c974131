"""Which contract routes the gateway under test serves. Routing is checked before auth, so a
request without a token gets 404 from a route that does not exist and 401 from one that does."""

from __future__ import annotations

import aiohttp
import pytest


async def route_exists(base_url: str, method: str, path: str) -> bool:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base_url + path) as response,
    ):
        return response.status != 404


async def require_routes(base_url: str, *routes: tuple[str, str]) -> None:
    """Fail the test at once, naming the routes, when the gateway does not serve them (a
    clearer message than a page stuck waiting for an answer)."""
    missing = [f"{m} {p}" for m, p in routes if not await route_exists(base_url, m, p)]
    if missing:
        pytest.fail(f"the gateway does not serve {', '.join(missing)}")


SESSIONS = ("POST", "/api/v1/sessions")
MESSAGE_STREAM = ("POST", "/api/v1/sessions/probe/messages/stream")
RESUME = ("GET", "/api/v1/streams/probe")
CANCEL = ("POST", "/api/v1/streams/probe/cancel")
PROJECT_STREAM = ("POST", "/api/v1/projects/probe/chat-stream")
