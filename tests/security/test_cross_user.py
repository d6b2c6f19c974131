"""Bob against everything of Alice's, on the real Redis and RabbitMQ: her session, its messages,
her job and its stream (attach, resume, cancel), tickets (for her job, or replayed on another
job), her project and its document. Each answer is docs/api.md's 404 (409 for her session id,
401 for a ticket), none carries her text, and her things are intact afterwards."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.settings import ConnectionSettings
from tests.conftest import AUTH, OTHER_AUTH, GatewayFactory, WorkerFactory
from tests.security.support import Client, Reply, World, assert_error, make_world, send_json


@pytest.fixture
async def real_gateway(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> Client:
    client = await start_gateway(real_connections)
    await start_worker(real_connections)
    return client


@pytest.fixture
async def alice(real_gateway: Client) -> World:
    return await make_world(real_gateway, f"alice-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def bob(real_gateway: Client) -> World:
    return await make_world(real_gateway, f"bob-{uuid.uuid4().hex[:12]}", auth=OTHER_AUTH)


def assert_not_hers(reply: Reply, alice: World, status: int, code: str, label: object) -> None:
    assert_error(reply, status, code, label)
    assert alice.secret not in reply.text, label
    assert alice.session_id not in reply.text or status == 409, label


async def assert_alice_intact(gateway: Client, alice: World) -> None:
    session = await send_json(gateway, "GET", f"/api/v1/sessions/{alice.session_id}")
    assert session.status == 200 and session.json()["title"] == alice.secret
    messages = await send_json(gateway, "GET", f"/api/v1/sessions/{alice.session_id}/messages")
    assert [m["status"] for m in messages.json()["messages"]] == ["complete", "complete"]
    documents = await send_json(gateway, "GET", f"/api/v1/projects/{alice.project}/documents")
    assert [d["id"] for d in documents.json()["documents"]] == [alice.document_id]


async def test_bob_gets_404_for_alices_session_messages_job_and_stream(
    real_gateway: Client, alice: World, bob: World
) -> None:
    sid, job = alice.session_id, alice.job_id
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        *(
            call
            for prefix in ("/api/v1/sessions", "/api/sessions")
            for call in (
                ("GET", f"{prefix}/{sid}", None),
                ("PATCH", f"{prefix}/{sid}", {"title": "mine now"}),
                ("GET", f"{prefix}/{sid}/messages", None),
                ("POST", f"{prefix}/{sid}/messages/stream", {"content": "hi", "pipeline": "echo"}),
                ("DELETE", f"{prefix}/{sid}", None),
            )
        ),
        ("POST", "/api/v1/chat/stream", {"text": "hi", "conversation_id": sid, "pipeline": "echo"}),
        ("GET", f"/api/v1/question/stream?question=hi&pipeline=echo&session_id={sid}", None),
        ("GET", f"/api/question/stream?question=hi&pipeline=echo&session_id={sid}", None),
        (
            "POST",
            f"/api/v1/projects/{bob.project}/chat-stream",
            {"message": "hi", "session_id": sid, "pipeline": "echo"},
        ),
        ("GET", f"/api/v1/streams/{job}", None),
        ("GET", f"/api/v1/streams/{job}?lastEventId=0", None),
        ("POST", f"/api/v1/streams/{job}/cancel", None),
        ("POST", "/api/v1/stream-tickets", {"jobId": job}),
    ]
    for method, path, body in calls:
        reply = await send_json(real_gateway, method, path, body, auth=OTHER_AUTH)
        assert_not_hers(reply, alice, 404, "not_found", (method, path))
    for resume in ("0", "3"):
        reply = await send_json(
            real_gateway,
            "GET",
            f"/api/v1/streams/{job}",
            auth=OTHER_AUTH,
            headers={"Last-Event-ID": resume},
        )
        assert_not_hers(reply, alice, 404, "not_found", ("resume", resume))
    listed = await send_json(real_gateway, "GET", "/api/v1/sessions", auth=OTHER_AUTH)
    assert [s["id"] for s in listed.json()["sessions"]] == [bob.session_id]
    assert alice.secret not in listed.text
    await assert_alice_intact(real_gateway, alice)


async def test_alices_session_id_is_409_to_bob_and_tells_him_nothing(
    real_gateway: Client, alice: World
) -> None:
    for prefix in ("/api/v1/sessions", "/api/sessions"):
        for given in (alice.session_id, alice.session_id.upper()):
            reply = await send_json(
                real_gateway, "POST", prefix, {"id": given, "title": "mine"}, auth=OTHER_AUTH
            )
            assert_not_hers(reply, alice, 409, "conflict", (prefix, given))
    await assert_alice_intact(real_gateway, alice)


async def test_a_batch_of_bobs_reaches_none_of_alices_things(
    real_gateway: Client, alice: World
) -> None:
    items = [
        {"method": "GET", "path": f"/api/v1/sessions/{alice.session_id}"},
        {"method": "GET", "path": f"/api/v1/sessions/{alice.session_id}/messages"},
        {"method": "PATCH", "path": f"/api/v1/sessions/{alice.session_id}", "body": {"title": "x"}},
        {"method": "DELETE", "path": f"/api/v1/sessions/{alice.session_id}"},
        {"method": "POST", "path": f"/api/v1/streams/{alice.job_id}/cancel"},
        {"method": "POST", "path": "/api/v1/stream-tickets", "body": {"jobId": alice.job_id}},
        {"method": "GET", "path": f"/api/v1/projects/{alice.project}/documents"},
        {
            "method": "DELETE",
            "path": f"/api/v1/projects/{alice.project}/documents/{alice.document_id}",
        },
    ]
    reply = await send_json(
        real_gateway, "POST", "/api/v1/batch", {"requests": items}, auth=OTHER_AUTH
    )
    assert reply.status == 200
    assert alice.secret not in reply.text
    for item in reply.json()["data"]["responses"]:
        assert item["status"] == 404 and item["error"]["code"] == "not_found", item
    await assert_alice_intact(real_gateway, alice)


async def ticket_for(gateway: Client, job_id: str, auth: dict[str, str]) -> str:
    reply = await send_json(gateway, "POST", "/api/v1/stream-tickets", {"jobId": job_id}, auth=auth)
    assert reply.status == 201, reply.text
    return str(reply.json()["ticket"])


async def test_a_ticket_opens_only_its_own_job_for_its_own_user(
    real_gateway: Client, alice: World, bob: World
) -> None:
    alices_ticket = await ticket_for(real_gateway, alice.job_id, AUTH)
    bobs_ticket = await ticket_for(real_gateway, bob.job_id, OTHER_AUTH)
    other_turn = await real_gateway.post(
        "/api/v1/chat/stream", json={"text": "another", "pipeline": "echo"}, headers=AUTH
    )
    alices_other_job = other_turn.headers["X-Job-Id"]
    await other_turn.read()

    # The control: a ticket opens its own job's stream without a header.
    opened = await send_json(
        real_gateway, "GET", f"/api/v1/streams/{alice.job_id}?ticket={alices_ticket}", auth=None
    )
    assert opened.status == 200 and alice.secret in opened.text

    for case, job, ticket in (
        ("bobs ticket on alices job", alice.job_id, bobs_ticket),
        ("alices ticket replayed on her other job", alices_other_job, alices_ticket),
        ("alices ticket on bobs job", bob.job_id, alices_ticket),
    ):
        reply = await send_json(
            real_gateway, "GET", f"/api/v1/streams/{job}?ticket={ticket}", auth=None
        )
        assert_not_hers(reply, alice, 401, "unauthorized", case)
    # A request with a header is its header's: Bob holding Alice's ticket is still Bob.
    reply = await send_json(
        real_gateway,
        "GET",
        f"/api/v1/streams/{alice.job_id}?ticket={alices_ticket}",
        auth=OTHER_AUTH,
    )
    assert_not_hers(reply, alice, 404, "not_found", "alices ticket with bobs token")
    # A ticket is no bearer token, for any route.
    for method, path in (("GET", "/api/v1/sessions"), ("GET", f"/api/v1/streams/{alice.job_id}")):
        reply = await send_json(
            real_gateway, method, path, auth={"Authorization": f"Bearer {alices_ticket}"}
        )
        assert_not_hers(reply, alice, 401, "unauthorized", ("ticket as bearer", path))


async def test_bob_gets_404_for_alices_project_and_document(
    real_gateway: Client, alice: World, bob: World
) -> None:
    documents = f"/api/v1/projects/{alice.project}/documents"
    upload = {"name": "bobs.md", "content": "Bob was here."}
    calls: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", documents, None),
        ("POST", documents, upload),
        ("DELETE", f"{documents}/{alice.document_id}", None),
        # Alice's document id under Bob's own project is not hers to reach either.
        ("DELETE", f"/api/v1/projects/{bob.project}/documents/{alice.document_id}", None),
        (
            "POST",
            f"/api/v1/projects/{alice.project}/chat-stream",
            {"message": alice.secret, "pipeline": "echo"},
        ),
    ]
    for method, path, body in calls:
        reply = await send_json(real_gateway, method, path, body, auth=OTHER_AUTH)
        assert_not_hers(reply, alice, 404, "not_found", (method, path))
    # Bob's own project still holds only his document.
    mine = await send_json(
        real_gateway, "GET", f"/api/v1/projects/{bob.project}/documents", auth=OTHER_AUTH
    )
    assert [d["id"] for d in mine.json()["documents"]] == [bob.document_id]
    await assert_alice_intact(real_gateway, alice)
