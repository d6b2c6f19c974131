"""Sessions and messages per docs/api.md, on both transports."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from gateway import appkeys
from shared.messages import DELETED_JOB_LOG_GRACE_S
from tests.conftest import AUTH, OTHER_AUTH, StackFactory
from tests.support.chat import Client, create_session, messages_of, slow_words
from tests.support.redis_keys import namespace_keys
from tests.support.sse import iter_sse, job_events, parse_sse

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too

ISO_UTC = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


async def test_create_get_rename_list_delete(gateway: Client) -> None:
    created = await gateway.post("/api/v1/sessions", json={}, headers=AUTH)
    assert created.status == 201
    session = await created.json()
    assert set(session) == {"id", "title", "userId", "createdAt", "updatedAt", "messageCount"}
    assert session["title"] == "New conversation" and session["userId"] == "alice"
    assert session["messageCount"] == 0
    import re

    assert re.match(ISO_UTC, session["createdAt"]) and re.match(ISO_UTC, session["updatedAt"])
    sid = session["id"]
    assert (await (await gateway.get(f"/api/v1/sessions/{sid}", headers=AUTH)).json()) == session
    renamed = await gateway.patch(
        f"/api/v1/sessions/{sid}", json={"title": "Renamed"}, headers=AUTH
    )
    assert renamed.status == 200 and (await renamed.json())["title"] == "Renamed"
    listed = await (await gateway.get("/api/v1/sessions", headers=AUTH)).json()
    assert [s["id"] for s in listed["sessions"]] == [sid] and listed["nextCursor"] is None
    assert (await gateway.delete(f"/api/v1/sessions/{sid}", headers=AUTH)).status == 204
    assert (await gateway.get(f"/api/v1/sessions/{sid}", headers=AUTH)).status == 404


async def test_client_chosen_ids_numeric_and_uuid(gateway: Client) -> None:
    numeric = await gateway.post("/api/sessions", json={"id": 12345678901234567890}, headers=AUTH)
    assert numeric.status == 201 and (await numeric.json())["id"] == "12345678901234567890"
    upper = str(uuid.uuid4()).upper()
    created = await gateway.post("/api/v1/sessions", json={"id": upper}, headers=AUTH)
    assert created.status == 201 and (await created.json())["id"] == upper.lower()
    again = await gateway.post("/api/v1/sessions", json={"id": upper.lower()}, headers=AUTH)
    assert again.status == 200 and (await again.json())["id"] == upper.lower()
    other = await gateway.post("/api/v1/sessions", json={"id": upper}, headers=OTHER_AUTH)
    assert other.status == 409 and (await other.json())["error"]["code"] == "conflict"
    for bad in ("abc", "1" * 21, -5, 1.5, True, "12-34"):
        response = await gateway.post("/api/v1/sessions", json={"id": bad}, headers=AUTH)
        assert response.status == 422, bad
        assert (await response.json())["error"]["details"][0]["field"] == "id"


async def test_list_pages_most_recent_first_with_a_cursor(gateway: Client) -> None:
    ids = [await create_session(gateway, title=f"s{i}") for i in range(5)]
    # Recency is in milliseconds, ties broken by id: the touch must fall in a later millisecond
    # than the last creation to be the most recent for sure.
    await asyncio.sleep(0.005)
    await gateway.patch(f"/api/v1/sessions/{ids[0]}", json={"title": "touched"}, headers=AUTH)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        query = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = await (await gateway.get("/api/v1/sessions", params=query, headers=AUTH)).json()
        assert len(page["sessions"]) <= 2
        seen += [s["id"] for s in page["sessions"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    assert seen[0] == ids[0]
    for bad in ("0", "101", "x"):
        response = await gateway.get("/api/v1/sessions", params={"limit": bad}, headers=AUTH)
        assert response.status == 422


async def test_title_longer_than_200_is_422(gateway: Client) -> None:
    response = await gateway.post("/api/v1/sessions", json={"title": "t" * 201}, headers=AUTH)
    assert response.status == 422


async def test_messages_after_a_stream_hold_the_turn(gateway: Client) -> None:
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "remember this", "pipeline": "echo"},
        headers=AUTH,
    )
    events = job_events(parse_sse(await response.read()))
    job_id = events[0]["jobId"]
    stored = await messages_of(gateway, sid)
    assert [m["role"] for m in stored] == ["user", "assistant"]
    user, assistant = stored
    assert user["content"] == "remember this" and user["status"] == "complete"
    assert assistant["status"] == "complete" and assistant["content"] == "remember this"
    assert assistant["jobId"] == job_id and assistant["id"] == events[-1]["messageId"]
    assert assistant["usage"]["tokens"] == 2 and assistant["citations"] == []
    session = await (await gateway.get(f"/api/v1/sessions/{sid}", headers=AUTH)).json()
    assert session["messageCount"] == 2


async def test_messages_during_a_slow_stream_show_partial_content(make_stack: StackFactory) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 100})
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": slow_words(20), "pipeline": "echo"},
        headers=AUTH,
    )
    tokens = 0
    async for message in iter_sse(response):
        if message.type == "token":
            tokens += 1
            if tokens == 3:
                break
    assistant = (await messages_of(gateway, sid))[1]
    assert assistant["status"] == "streaming"
    assert assistant["content"].startswith("w0 w1 w2")
    assert assistant["content"] != slow_words(20)
    response.close()


async def delete_mid_stream(gateway: Client, sid: str) -> tuple[str, dict[str, Any]]:
    """Stream a slow answer into ``sid``, delete the session at its first token, and read on
    to the end: the job's id and its ``end``."""
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": slow_words(50), "pipeline": "echo"},
        headers=AUTH,
    )
    deleted = False
    async for message in iter_sse(response):
        if message.type == "token" and not deleted:
            assert (await gateway.delete(f"/api/v1/sessions/{sid}", headers=AUTH)).status == 204
            deleted = True
        if message.type == "end":
            return response.headers["X-Job-Id"], dict(message.json)
    raise AssertionError("the stream ended without an end event")


async def test_deleting_a_session_cancels_its_running_job(make_stack: StackFactory) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 100})
    sid = await create_session(gateway)
    _, end = await delete_mid_stream(gateway, sid)
    assert end["finishReason"] == "cancelled"
    assert (await gateway.get(f"/api/v1/sessions/{sid}/messages", headers=AUTH)).status == 404
    await asyncio.sleep(0)


async def test_a_session_id_with_a_trailing_newline_is_422(gateway: Client) -> None:
    """An id ends up in the X-Session-Id header of a stream, where a newline is refused: it must
    be refused at the door, before any session is stored or any job is submitted."""
    for bad in ("777\n", f"{uuid.uuid4()}\n", "777\r\n", "\n777"):
        created = await gateway.post("/api/v1/sessions", json={"id": bad}, headers=AUTH)
        assert created.status == 422, bad
        assert (await created.json())["error"]["details"][0]["field"] == "id"
        chat = await gateway.post(
            "/api/v1/chat/stream",
            json={"text": "hi", "conversation_id": bad, "pipeline": "echo"},
            headers=AUTH,
        )
        assert chat.status == 422, bad
        question = await gateway.get(
            "/api/v1/question/stream",
            params={"question": "hi", "session_id": bad, "pipeline": "echo"},
            headers=AUTH,
        )
        assert question.status == 422, bad
    path = await gateway.post(
        "/api/v1/sessions/777%0A/messages/stream", json={"content": "hi"}, headers=AUTH
    )
    # A path's id that no session could have is a resource that does not exist.
    assert path.status == 404
    assert (await gateway.get("/api/v1/sessions/777%0A", headers=AUTH)).status == 404
    listed = await (await gateway.get("/api/v1/sessions", headers=AUTH)).json()
    assert listed["sessions"] == []


async def keys_of(gateway: Client) -> set[str]:
    names = gateway.app[appkeys.SETTINGS].connections.names
    return await namespace_keys(gateway.app[appkeys.REDIS], names)


async def rag_turn(gateway: Client, sid: str, headers: dict[str, str]) -> tuple[str, list[Any]]:
    response = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": "How do streams resume?", "conversation_id": sid, "pipeline": "rag"},
        headers=headers,
    )
    assert response.status == 200, await response.text()
    found = job_events(parse_sse(await response.read()))
    assert found[-1]["type"] == "end", found[-1]
    return response.headers["X-Job-Id"], found


def context_step(found: list[Any]) -> dict[str, Any]:
    [step] = [e for e in found if e["type"] == "progress" and e["progress"]["step"] == "context"]
    return dict(step["progress"]["metadata"])


async def test_deleting_a_session_leaves_nothing_behind(gateway: Client) -> None:
    """Messages, the RAG summary, the jobs' records and replay logs: nothing of a deleted
    session stays, a ticket for its job finds no job, and the next owner of its id (another
    user) starts empty."""
    before = await keys_of(gateway)
    sid = await create_session(gateway, id=424242)
    job_id, found = await rag_turn(gateway, sid, AUTH)
    assert context_step(found)["summary"] is False
    _, found = await rag_turn(gateway, sid, AUTH)
    assert context_step(found)["summary"] is True
    ticket = await gateway.post("/api/v1/stream-tickets", json={"jobId": job_id}, headers=AUTH)
    assert ticket.status == 201
    token = (await ticket.json())["ticket"]
    messages = await messages_of(gateway, sid)
    assert (await gateway.delete(f"/api/v1/sessions/{sid}", headers=AUTH)).status == 204

    left = await keys_of(gateway) - before
    traces = [sid, job_id, *(m["id"] for m in messages), *(m.get("jobId", "") for m in messages)]
    assert [key for key in left if any(trace and trace in key for trace in traces)] == []
    attach = await gateway.get(f"/api/v1/streams/{job_id}", params={"ticket": token})
    assert attach.status == 404 and (await attach.json())["error"]["code"] == "not_found"
    resumed = await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)
    assert resumed.status == 404

    created = await gateway.post("/api/v1/sessions", json={"id": 424242}, headers=OTHER_AUTH)
    assert created.status == 201 and (await created.json())["messageCount"] == 0
    _, found = await rag_turn(gateway, sid, OTHER_AUTH)
    context = context_step(found)
    assert context["summary"] is False and context["messages"] == 0 and context["tokens"] == 0


async def test_a_job_running_when_its_session_is_deleted_leaves_nothing_behind(
    make_stack: StackFactory,
) -> None:
    """The job's stream still ends ``cancelled``; what the job writes after the delete (its
    end, its record's status) brings nothing back, and its replay log lives only the short
    grace its open streams need."""
    gateway = await make_stack(worker={"echo_token_delay_ms": 100})
    redis = gateway.app[appkeys.REDIS]
    names = gateway.app[appkeys.SETTINGS].connections.names
    sid = await create_session(gateway)
    job_id, end = await delete_mid_stream(gateway, sid)
    assert end["finishReason"] == "cancelled"
    # The log and the cancel flag stay for the grace; the worker shortens the log's life once
    # its final event is in (the end event refreshed its full replay TTL until then).
    graced = {names.job_replay_log(job_id), names.job_cancel_flag(job_id)}
    for _ in range(200):
        ttls = [await redis.ttl(key) for key in graced]
        if all(ttl <= DELETED_JOB_LOG_GRACE_S for ttl in ttls):
            break
        await asyncio.sleep(0.02)
    for key in graced:
        assert -2 <= await redis.ttl(key) <= DELETED_JOB_LOG_GRACE_S, key
    left = await keys_of(gateway) - graced
    assert [key for key in left if sid in key or job_id in key] == []
    assert (await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)).status == 404
