"""Client-side helpers for the chat API, as a front end would use it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH

Client = TestClient[web.Request, web.Application]


async def create_session(client: Client, headers: dict[str, str] = AUTH, **body: Any) -> str:
    response = await client.post("/api/v1/sessions", json=body, headers=headers)
    assert response.status in (200, 201), await response.text()
    return str((await response.json())["id"])


async def messages_of(client: Client, session_id: str, headers: dict[str, str] = AUTH) -> list[Any]:
    response = await client.get(f"/api/v1/sessions/{session_id}/messages", headers=headers)
    assert response.status == 200, await response.text()
    return list((await response.json())["messages"])


def slow_words(count: int) -> str:
    return " ".join(f"w{i}" for i in range(count))
