"""chatstream-client against a gateway on a real port with a worker on the real Redis and
RabbitMQ: async and sync streams of typed events, resume after a cut connection, tickets,
cancel and the contract's errors. The sync client blocks, so it runs in a thread while the
test's loop serves the gateway."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

import pytest
from chatstream_client import (
    AsyncChatstreamClient,
    Backoff,
    ChatstreamClient,
    ChatstreamError,
    EndEvent,
    Event,
    Message,
    ProgressEvent,
    Reconnecting,
    SnapshotEvent,
    StartEvent,
    TokenEvent,
)

from tests.clients.conftest import LiveGateway
from tests.clients.cut_proxy import CutProxy
from tests.conftest import API_KEY

QUESTION = "why   does a stream\nresume where it stopped after the network drops it"
ANSWER = " ".join(QUESTION.split())
STEPS = ["start", "context", "analyzing", "planning", "validation", "execution", "memory"]
# Resumes come quickly: the tests wait for the cut, not for a backoff.
QUICK = Backoff(initial_s=0.05, max_s=0.2)
CutProxyFactory = Callable[[str], Awaitable[CutProxy]]


def job_events(events: Sequence[Event]) -> list[Event]:
    """The events the job itself sent, which carry a seq."""
    return [e for e in events if e.seq is not None]


def assert_one_whole_answer(events: Sequence[Event]) -> EndEvent:
    """Every job event once, in order, from the start to the end, and tokens that add up to
    the end's content."""
    sequenced = job_events(events)
    assert [e.seq for e in sequenced] == list(range(1, len(sequenced) + 1))
    assert isinstance(sequenced[0], StartEvent)
    end = events[-1]
    assert isinstance(end, EndEvent), events[-3:]
    assert "".join(e.content for e in events if isinstance(e, TokenEvent)) == end.content
    return end


async def test_async_stream_of_a_message_into_a_session(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway(token_delay_ms=0)
    async with AsyncChatstreamClient(base_url, API_KEY) as client:
        session = await client.create_session("trip")
        stream = client.send_message(session.id, QUESTION)
        events = [event async for event in stream]

        end = assert_one_whole_answer(events)
        assert end.content == ANSWER and end.finish_reason == "stop"
        assert end.citations == () and end.usage.tokens == len(ANSWER.split())
        start = events[0]
        assert isinstance(start, StartEvent) and start.session_id == session.id
        assert stream.job_id == start.job_id and stream.session_id == session.id
        steps = [e.step for e in events if isinstance(e, ProgressEvent)]
        assert steps[: len(STEPS)] == STEPS
        assert stream.last_event_id == end.seq
        # The job ended by itself: there is nothing to stop.
        assert await client.cancel(start.job_id) is False

        user, assistant = await client.messages(session.id)
        assert isinstance(assistant, Message)
        assert (user.role, user.content) == ("user", QUESTION.strip())
        assert (assistant.id, assistant.content) == (end.message_id, ANSWER)
        assert assistant.status == "complete" and assistant.job_id == start.job_id
        page = await client.list_sessions(limit=5)
        assert [s.id for s in page.sessions] == [session.id]
        assert page.sessions[0].message_count == 2


async def test_sync_chat_opens_with_the_snapshot_of_a_new_session(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=0)

    def chat() -> tuple[list[Event], str | None]:
        with ChatstreamClient(base_url, API_KEY) as client, client.chat(QUESTION) as stream:
            return list(stream), stream.session_id

    events, session_id = await asyncio.to_thread(chat)
    snapshot = events[0]
    assert isinstance(snapshot, SnapshotEvent) and snapshot.seq is None
    assert snapshot.session.id == session_id
    # The turn as stored when it began: the question, and the answer being written.
    assert [m.role for m in snapshot.messages] == ["user", "assistant"]
    assert snapshot.messages[0].content == QUESTION.strip()
    assert assert_one_whole_answer(events[1:]).content == ANSWER


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_a_cut_connection_is_resumed_with_last_event_id_and_nothing_is_lost(
    mode: str, live_gateway: LiveGateway, cut_proxy: CutProxyFactory
) -> None:
    base_url = await live_gateway(token_delay_ms=80)
    proxy = await cut_proxy(base_url)

    async def run_async() -> list[Event]:
        async with AsyncChatstreamClient(proxy.url, API_KEY, backoff=QUICK) as client:
            return [event async for event in client.chat(QUESTION)]

    def run_sync() -> list[Event]:
        with ChatstreamClient(proxy.url, API_KEY, backoff=QUICK) as client:
            return list(client.chat(QUESTION))

    events = await run_async() if mode == "async" else await asyncio.to_thread(run_sync)

    assert proxy.cuts == 1
    assert assert_one_whole_answer(events).content == ANSWER
    reconnects = [e for e in events if isinstance(e, Reconnecting)]
    assert [r.attempt for r in reconnects] == [1]
    # The resume asked for what came after the last event seen before the cut.
    before_cut = events[: events.index(reconnects[0])]
    last_seen = max(e.seq for e in before_cut if e.seq is not None)
    resumes = proxy.requests_for("/api/v1/streams/")
    assert len(resumes) == 1, proxy.request_heads
    assert f"\r\nlast-event-id: {last_seen}\r\n".encode() in resumes[0].lower() + b"\r\n"


async def test_resume_by_hand_continues_after_the_last_event_id(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=60)
    async with AsyncChatstreamClient(base_url, API_KEY) as client:
        first: list[Event] = []
        async with client.chat(QUESTION) as stream:
            async for event in stream:
                first.append(event)
                if len([e for e in first if isinstance(e, TokenEvent)]) == 3:
                    break
        assert stream.job_id is not None
        rest = [e async for e in client.resume(stream.job_id, stream.last_event_id)]

    assert job_events(rest)[0].seq == stream.last_event_id + 1
    assert_one_whole_answer(job_events(first) + rest)


async def test_a_ticket_lets_a_client_without_the_key_follow_the_job(
    live_gateway: LiveGateway,
) -> None:
    base_url = await live_gateway(token_delay_ms=20)
    async with (
        AsyncChatstreamClient(base_url, API_KEY) as owner,
        AsyncChatstreamClient(base_url) as keyless,
    ):
        stream = owner.chat(QUESTION)
        async for event in stream:
            if isinstance(event, StartEvent):
                break
        await stream.aclose()
        assert stream.job_id is not None
        ticket = await owner.create_ticket(stream.job_id)
        assert ticket.ticket and API_KEY not in ticket.ticket

        with pytest.raises(ChatstreamError) as refused:
            [e async for e in keyless.resume(stream.job_id)]
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")

        events = [e async for e in keyless.resume(stream.job_id, ticket=ticket.ticket)]
    assert assert_one_whole_answer(events).content == ANSWER


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_cancel_ends_the_stream_cancelled(mode: str, live_gateway: LiveGateway) -> None:
    # Slow tokens: the job is still writing when the cancel comes.
    base_url = await live_gateway(token_delay_ms=300)

    async def run_async() -> tuple[list[Event], bool]:
        async with AsyncChatstreamClient(base_url, API_KEY) as client:
            stream = client.chat(QUESTION)
            events: list[Event] = []
            async for event in stream:
                events.append(event)
                if isinstance(event, TokenEvent):
                    await stream.cancel()
            assert stream.job_id is not None
            return events, await client.cancel(stream.job_id)

    def run_sync() -> tuple[list[Event], bool]:
        with ChatstreamClient(base_url, API_KEY) as client:
            stream = client.chat(QUESTION)
            # Asked before the gateway has named the job: sent as soon as it does.
            stream.cancel()
            events = list(stream)
            assert stream.job_id is not None
            return events, client.cancel(stream.job_id)

    events, second = await run_async() if mode == "async" else await asyncio.to_thread(run_sync)
    end = events[-1]
    assert isinstance(end, EndEvent) and end.finish_reason == "cancelled"
    assert len(end.content.split()) < len(ANSWER.split())
    # A second press after the cancel ended the job is still answered as stopping.
    assert second is True


async def test_the_contracts_errors_arrive_as_chatstream_errors(live_gateway: LiveGateway) -> None:
    base_url = await live_gateway()
    async with (
        AsyncChatstreamClient(base_url, "not-a-key") as stranger,
        AsyncChatstreamClient(base_url, API_KEY) as client,
    ):
        with pytest.raises(ChatstreamError) as refused:
            await stranger.list_sessions()
        assert (refused.value.status, refused.value.code) == (401, "unauthorized")

        with pytest.raises(ChatstreamError) as missing:
            [e async for e in client.send_message(str(uuid.uuid4()), "hello")]
        assert (missing.value.status, missing.value.code) == (404, "not_found")

        with pytest.raises(ChatstreamError) as invalid:
            await client.list_sessions(limit=500)
        assert invalid.value.code == "validation_error"
        assert [d["field"] for d in invalid.value.details] == ["limit"]


async def test_a_gateway_that_is_not_there_is_a_network_error() -> None:
    def ask() -> None:
        with ChatstreamClient("http://127.0.0.1:9", API_KEY) as client:
            list(client.chat("hello"))

    with pytest.raises(ChatstreamError) as unreachable:
        await asyncio.to_thread(ask)
    assert (unreachable.value.status, unreachable.value.code) == (0, "network")
