"""The OpenAI-compatible face, driven by the official ``openai`` client, unchanged."""

from __future__ import annotations

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from shared.settings import PIPELINES
from tests.conftest import API_KEY, AUTH, OTHER_AUTH, GatewayFactory
from tests.support.sse import parse_sse

Client = TestClient[web.Request, web.Application]


def openai_client(gateway: Client, api_key: str = API_KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=str(gateway.make_url("/v1")), api_key=api_key, max_retries=0, timeout=30.0
    )


async def test_openai_client_streams_an_answer(gateway: Client) -> None:
    async with openai_client(gateway) as client:
        stream = await client.chat.completions.create(
            model="echo",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello   from the\nopenai client"},
            ],
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert text == "hello from the openai client"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


async def test_openai_client_gets_one_completion_without_streaming(gateway: Client) -> None:
    async with openai_client(gateway) as client:
        completion = await client.chat.completions.create(
            model="echo", messages=[{"role": "user", "content": "one  whole answer"}]
        )
    assert completion.object == "chat.completion"
    assert completion.model == "echo"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "one whole answer"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
    assert completion.usage.total_tokens == 6


async def test_the_completion_is_stored_as_a_turn_of_the_callers_session(gateway: Client) -> None:
    response = await gateway.post(
        "/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": "kept in a session"}]},
        headers=AUTH,
    )
    assert response.status == 200
    session_id = response.headers["X-Session-Id"]
    listed = await gateway.get(f"/api/v1/sessions/{session_id}/messages", headers=AUTH)
    messages = (await listed.json())["messages"]
    assert [(m["role"], m["content"], m["status"]) for m in messages] == [
        ("user", "kept in a session", "complete"),
        ("assistant", "kept in a session", "complete"),
    ]
    job_id = response.headers["X-Job-Id"]
    assert messages[1]["jobId"] == job_id
    for path in (
        f"/api/v1/sessions/{session_id}",
        f"/api/v1/sessions/{session_id}/messages",
        f"/api/v1/streams/{job_id}",
    ):
        other = await gateway.get(path, headers=OTHER_AUTH)
        assert other.status == 404, path
    other_cancel = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=OTHER_AUTH)
    assert other_cancel.status == 404


async def test_openai_client_lists_the_pipelines_as_models(gateway: Client) -> None:
    async with openai_client(gateway) as client:
        models = [model async for model in client.models.list()]
    assert [model.id for model in models] == list(PIPELINES)
    assert all(model.object == "model" for model in models)
    async with openai_client(gateway) as client:
        echo = await client.models.retrieve("echo")
        assert echo.id == "echo" and echo.owned_by == "chatstream"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-nothing")


async def test_unknown_model_is_not_found(gateway: Client) -> None:
    async with openai_client(gateway) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(
                model="gpt-nothing", messages=[{"role": "user", "content": "hi"}]
            )
    assert caught.value.status_code == 404
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "not_found"


async def test_a_bad_api_key_is_refused(gateway: Client) -> None:
    async with openai_client(gateway, api_key="not-a-key") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "no user message"}],
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": "x" * 16_001}],
    ],
)
async def test_a_completion_without_a_usable_user_message_is_422(
    gateway: Client, messages: list[dict[str, str]]
) -> None:
    response = await gateway.post(
        "/v1/chat/completions", json={"model": "echo", "messages": messages}, headers=AUTH
    )
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "messages"


async def test_the_stream_keeps_alive_with_comments_and_ends_with_done(
    connections, start_gateway: GatewayFactory, start_worker
) -> None:
    gateway = await start_gateway(
        connections, heartbeat_interval_s=0.05, worker={"echo_token_delay_ms": 80}
    )
    if not connections.embedded:
        await start_worker(connections, echo_token_delay_ms=80)
    response = await gateway.post(
        "/v1/chat/completions",
        json={"model": "echo", "stream": True, "messages": [{"role": "user", "content": "a b c"}]},
        headers=AUTH,
    )
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    raw = await response.read()
    assert raw.endswith(b"data: [DONE]\n\n")
    messages = parse_sse(raw)
    assert any("keep-alive" in m.comments for m in messages)
    data = [m.data for m in messages if m.data]
    assert data[-1] == "[DONE]"
    assert all(m.id is None for m in messages)
    assert b"heartbeat" not in raw
