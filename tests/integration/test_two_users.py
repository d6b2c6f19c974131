"""Every route that takes an id answers 404 to a user who does not own it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import AUTH, OTHER_AUTH, StackFactory
from tests.support.chat import Client, create_session, messages_of
from tests.support.sse import iter_sse


@pytest.fixture
async def alices_job(make_stack: StackFactory) -> tuple[Client, str, str]:
    """A gateway, one of Alice's sessions, and a job of hers still running."""
    gateway = await make_stack(worker={"echo_token_delay_ms": 200})
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "a b c d e f g h", "pipeline": "echo"},
        headers=AUTH,
    )
    job_id = response.headers["X-Job-Id"]
    async for message in iter_sse(response):
        if message.type == "start":
            break
    return gateway, sid, job_id


async def test_bob_gets_404_for_every_route_naming_alices_ids(
    alices_job: tuple[Client, str, str],
) -> None:
    gateway, sid, job_id = alices_job
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/v1/sessions/{sid}", {}),
        ("GET", f"/api/sessions/{sid}", {}),
        ("PATCH", f"/api/v1/sessions/{sid}", {"json": {"title": "mine"}}),
        ("DELETE", f"/api/v1/sessions/{sid}", {}),
        ("GET", f"/api/v1/sessions/{sid}/messages", {}),
        ("POST", f"/api/v1/sessions/{sid}/messages/stream", {"json": {"content": "hi"}}),
        ("POST", "/api/v1/chat/stream", {"json": {"text": "hi", "conversation_id": sid}}),
        ("GET", "/api/v1/question/stream", {"params": {"question": "hi", "session_id": sid}}),
        (
            "POST",
            "/api/v1/projects/docs/chat-stream",
            {"json": {"message": "hi", "session_id": sid}},
        ),
        ("GET", f"/api/v1/streams/{job_id}", {}),
        ("POST", f"/api/v1/streams/{job_id}/cancel", {}),
        ("POST", "/api/v1/stream-tickets", {"json": {"jobId": job_id}}),
    ]
    for method, path, extra in calls:
        response = await gateway.request(method, path, headers=OTHER_AUTH, **extra)
        assert response.status == 404, (method, path, await response.text())
        assert (await response.json())["error"]["code"] == "not_found"
    listed = await (await gateway.get("/api/v1/sessions", headers=OTHER_AUTH)).json()
    assert listed["sessions"] == []
    # Alice's things are untouched by all that: Bob's turns in her session stored nothing.
    session = await gateway.get(f"/api/v1/sessions/{sid}", headers=AUTH)
    assert (await session.json())["messageCount"] == 2
    assert len(await messages_of(gateway, sid)) == 2
