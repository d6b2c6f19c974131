"""Each seed front end's request, parsed the way that front end parses the reply."""

from __future__ import annotations

import json
import uuid

from tests.conftest import AUTH
from tests.support.chat import Client, create_session, messages_of


def sse_data_lines(raw: bytes) -> list[dict[str, object]]:
    """Seeds 002 and 003 read every `data:` line as JSON with a `type`."""
    found = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: "):
            found.append(json.loads(line[len("data: ") :]))
    return found


async def test_seed_002_session_messages_stream(gateway: Client) -> None:
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "Hello there friend", "role": "user", "pipeline": "echo"},
        headers=AUTH,
    )
    assert response.status == 200
    chunks = sse_data_lines(await response.read())
    answer = "".join(str(c["content"]) for c in chunks if c["type"] == "token")
    end = next(c for c in chunks if c["type"] == "end")
    start = next(c for c in chunks if c["type"] == "start")
    assert answer == "Hello there friend"
    assert end["messageId"] == start["messageId"]


async def test_seed_004_chat_stream_snapshot_then_deltas(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream",
        json={
            "text": "Hello!",
            "metadata": {"client": "nextjs-frontend", "tags": [], "extras": {}},
            "pipeline": "echo",
        },
        headers=AUTH,
    )
    assert response.status == 200
    text = (await response.read()).decode()
    blocks = [b for b in text.split("\n\n") if b.strip()]
    snapshot_block = next(b for b in blocks if b.startswith("event: snapshot"))
    snapshot = json.loads(snapshot_block.split("data: ", 1)[1])
    conversation_id = snapshot["session"]["id"]
    answer, done = "", False
    for block in blocks:
        for line in block.split("\n"):
            if line.startswith("data: ") and not block.startswith("event:"):
                data = json.loads(line[6:])
                if "delta" in data:
                    answer += data["delta"]
                    done = done or data["done"]
    assert answer == "Hello!" and done
    # The follow-up turn goes into the same conversation, and also opens with the snapshot.
    again = await gateway.post(
        "/api/v1/chat/stream",
        json={"text": "Again", "conversation_id": conversation_id, "pipeline": "echo"},
        headers=AUTH,
    )
    body = (await again.read()).decode()
    assert body.split("\n\n")[1].startswith("event: snapshot")
    stored = await messages_of(gateway, conversation_id)
    assert [m["content"] for m in stored] == ["Hello!", "Hello!", "Again", "Again"]


async def test_seeds_000_001_question_stream_get_with_numeric_and_uuid_sessions(
    gateway: Client,
) -> None:
    numeric = await create_session(gateway, id=int(uuid.uuid4().int % 10**12))
    uuid_session = await create_session(gateway, id=str(uuid.uuid4()))
    for sid, path in ((numeric, "/api/question/stream"), (uuid_session, "/api/v1/question/stream")):
        response = await gateway.get(
            path,
            params={
                "question": "Was ist das?",
                "session_id": sid,
                "simple_language": "true",
                "pipeline": "echo",
            },
            headers=AUTH,
        )
        assert response.status == 200
        assert response.headers["X-Session-Id"] == sid
        chunks = sse_data_lines(await response.read())
        assert "".join(str(c["content"]) for c in chunks if c["type"] == "token") == "Was ist das?"
    created = await gateway.get(
        "/api/v1/question/stream", params={"question": "new one", "pipeline": "echo"}, headers=AUTH
    )
    assert created.status == 200
    await created.read()
    assert len(await messages_of(gateway, created.headers["X-Session-Id"])) == 2


async def test_a_16000_character_question_fits_in_a_get_url(gateway: Client) -> None:
    question = " ".join(["word"] * 3200)[:16_000]
    response = await gateway.get(
        "/api/v1/question/stream", params={"question": question, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    chunks = sse_data_lines(await response.read())
    assert next(c for c in chunks if c["type"] == "end")["content"] == " ".join(question.split())


async def test_a_16000_character_non_ascii_question_fits_in_a_get_url(gateway: Client) -> None:
    question = "\u00e9" * 16_000  # 96 KB once percent-encoded
    response = await gateway.get(
        "/api/v1/question/stream", params={"question": question, "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 200
    chunks = sse_data_lines(await response.read())
    assert next(c for c in chunks if c["type"] == "end")["content"] == question


async def test_seed_003_project_chat_stream_reports_all_eight_steps(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/projects/docs/chat-stream",
        json={"message": "How does it work?", "pipeline": "echo"},
        headers=AUTH,
    )
    assert response.status == 200
    chunks = sse_data_lines(await response.read())
    steps = [c["progress"]["step"] for c in chunks if c["type"] == "progress"]  # type: ignore[index]
    assert steps == [
        "start",
        "context",
        "analyzing",
        "planning",
        "validation",
        "execution",
        "memory",
        "completion",
    ]
    assert chunks[-1]["type"] == "end"
    unknown = await gateway.post(
        "/api/v1/projects/nope/chat-stream", json={"message": "hi"}, headers=AUTH
    )
    assert unknown.status == 404
