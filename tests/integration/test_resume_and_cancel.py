"""Resume with Last-Event-ID, stream tickets, and the stop button, on both transports."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared import events
from shared.amqp import AmqpJobQueue
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings
from tests.conftest import (
    AUTH,
    OTHER_AUTH,
    GatewayFactory,
    StackFactory,
    WorkerFactory,
    worker_settings,
)
from tests.support.chat import Client, create_session, messages_of, slow_words
from tests.support.sse import SseMessage, iter_sse, job_events, parse_sse
from worker.event_log import EventPublishError
from worker.job_run import JobRun
from worker.pipelines import PipelineResult
from worker.worker import Worker

# On one Redis and on a Redis Cluster (docs/redis-cluster.md).
pytestmark = pytest.mark.cluster_too


async def start_slow(gateway: Client, words: int = 12) -> tuple[str, str, object]:
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": slow_words(words), "pipeline": "echo"},
        headers=AUTH,
    )
    assert response.status == 200
    return sid, response.headers["X-Job-Id"], response


async def read_until_seq(response: object, seq: int) -> list[SseMessage]:
    got: list[SseMessage] = []
    async for message in iter_sse(response):  # type: ignore[arg-type]
        if message.id is not None:
            got.append(message)
            if int(message.id) >= seq:
                break
    return got


async def test_resume_from_the_middle_has_no_gap_and_no_duplicate(make_stack: StackFactory) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 60})
    sid, job_id, first = await start_slow(gateway)
    before = await read_until_seq(first, 9)
    first.close()  # type: ignore[attr-defined]
    resumed = await gateway.get(
        f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": before[-1].id or ""}
    )
    assert resumed.status == 200 and resumed.headers["X-Job-Id"] == job_id
    after = [m for m in parse_sse(await resumed.read()) if m.id is not None]
    seqs = [int(m.id or 0) for m in before + after]
    assert seqs == list(range(1, len(seqs) + 1))
    assert after[-1].type == "end"
    assert after[-1].json["content"] == slow_words(12)
    assert (await messages_of(gateway, sid))[1]["status"] == "complete"


async def test_resume_after_the_end_replays_the_rest_then_closes(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "done already", "pipeline": "echo"}, headers=AUTH
    )
    events = job_events(parse_sse(await response.read()))
    job_id = response.headers["X-Job-Id"]
    everything = await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)
    assert job_events(parse_sse(await everything.read())) == events
    from_zero = await gateway.get(
        f"/api/v1/streams/{job_id}", params={"lastEventId": "0"}, headers=AUTH
    )
    assert job_events(parse_sse(await from_zero.read())) == events
    tail = await gateway.get(f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": "3"})
    assert job_events(parse_sse(await tail.read())) == events[3:]
    nothing_left = await gateway.get(
        f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": str(len(events))}
    )
    assert nothing_left.status == 200
    assert job_events(parse_sse(await nothing_left.read())) == []
    bad = await gateway.get(f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": "x"})
    assert bad.status == 422
    assert (await gateway.get("/api/v1/streams/no-such-job", headers=AUTH)).status == 404


async def test_past_the_replay_window_comes_reset_snapshot_end(make_stack: StackFactory) -> None:
    gateway = await make_stack(event_log_ttl_s=1)
    sid = await create_session(gateway)
    response = await gateway.post(
        f"/api/v1/sessions/{sid}/messages/stream",
        json={"content": "gone soon", "pipeline": "echo"},
        headers=AUTH,
    )
    job_id = response.headers["X-Job-Id"]
    await response.read()
    await asyncio.sleep(1.6)  # the replay log's TTL (1 s) runs out
    late = await gateway.get(f"/api/v1/streams/{job_id}", headers={**AUTH, "Last-Event-ID": "2"})
    assert late.status == 200
    messages = [m for m in parse_sse(await late.read()) if m.data]
    assert [m.type for m in messages] == ["reset", "snapshot", "end"]
    assert messages[1].event == "snapshot" and messages[1].id is None
    assert messages[1].json["messages"][0]["content"] == "gone soon"
    assert messages[2].json["content"] == "gone soon" and messages[2].json["finishReason"] == "stop"
    assert messages[0].id is None and messages[2].id == "12"  # `end` keeps the job's final seq
    assert (await gateway.delete(f"/api/v1/sessions/{sid}", headers=AUTH)).status == 204
    # Deleting the session deleted the job with it: as if it had never been.
    gone = await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)
    assert gone.status == 404 and (await gone.json())["error"]["code"] == "not_found"


async def test_two_tabs_watch_one_job(make_stack: StackFactory) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 40})
    _, job_id, first = await start_slow(gateway, words=8)
    second = await gateway.get(f"/api/v1/streams/{job_id}", headers=AUTH)
    one = [m for m in parse_sse(await first.read()) if m.id]  # type: ignore[attr-defined]
    two = [m for m in parse_sse(await second.read()) if m.id]
    assert [m.data for m in one] == [m.data for m in two]


async def test_a_ticket_opens_the_stream_without_a_header(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "ticketed", "pipeline": "echo"}, headers=AUTH
    )
    job_id = response.headers["X-Job-Id"]
    await response.read()
    issued = await gateway.post("/api/v1/stream-tickets", json={"jobId": job_id}, headers=AUTH)
    assert issued.status == 201
    ticket = await issued.json()
    assert set(ticket) == {"ticket", "expiresAt"} and "test-key" not in ticket["ticket"]
    for _ in range(2):  # any number of times until it expires
        opened = await gateway.get(f"/api/v1/streams/{job_id}", params={"ticket": ticket["ticket"]})
        assert opened.status == 200
        assert job_events(parse_sse(await opened.read()))[-1]["content"] == "ticketed"
    other = await gateway.post(
        "/api/v1/chat/stream", json={"text": "other", "pipeline": "echo"}, headers=AUTH
    )
    await other.read()
    wrong_job = await gateway.get(
        f"/api/v1/streams/{other.headers['X-Job-Id']}", params={"ticket": ticket["ticket"]}
    )
    assert wrong_job.status == 401
    forged = await gateway.get(
        f"/api/v1/streams/{job_id}", params={"ticket": ticket["ticket"] + "x"}
    )
    assert forged.status == 401 and forged.headers["WWW-Authenticate"] == "Bearer"
    not_a_token_route = await gateway.get("/api/v1/sessions", params={"ticket": ticket["ticket"]})
    assert not_a_token_route.status == 401


async def test_an_expired_ticket_is_refused(make_stack: StackFactory) -> None:
    gateway = await make_stack(stream_ticket_ttl_s=1)
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "brief", "pipeline": "echo"}, headers=AUTH
    )
    job_id = response.headers["X-Job-Id"]
    await response.read()
    ticket = (
        await (
            await gateway.post("/api/v1/stream-tickets", json={"jobId": job_id}, headers=AUTH)
        ).json()
    )["ticket"]
    await asyncio.sleep(2.1)
    expired = await gateway.get(f"/api/v1/streams/{job_id}", params={"ticket": ticket})
    assert expired.status == 401


def cancelled_lines(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    # capture_logs skips the contextvars processor, so the job's ids are not on the lines; the
    # test runs one job only.
    return [entry for entry in logs if entry.get("event") == "job.cancelled"]


async def test_cancel_stops_the_job_and_saves_what_it_had(make_stack: StackFactory) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 80})
    sid, job_id, response = await start_slow(gateway, words=60)
    end = None
    tokens = 0
    with capture_logs() as logs:
        async for message in iter_sse(response):  # type: ignore[arg-type]
            if message.type == "token":
                tokens += 1
                if tokens == 3:
                    cancel = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
                    assert cancel.status == 202
            if message.type == "end":
                end = message.json
    # The worker's log shows it stopped, and why.
    [stopped] = cancelled_lines(logs)
    assert stopped["reason"] == "requested"
    assert end is not None and end["finishReason"] == "cancelled"
    assert 3 <= end["usage"]["tokens"] < 60
    assistant = (await messages_of(gateway, sid))[1]
    assert assistant["status"] == "cancelled" and assistant["content"] == end["content"]
    # A second press of stop, after the cancel already ended the job, is still accepted.
    again = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
    assert again.status == 202
    assert (
        await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=OTHER_AUTH)
    ).status == 404


async def test_a_job_nobody_watches_is_cancelled_after_the_grace_period(
    make_stack: StackFactory,
) -> None:
    gateway = await make_stack(worker={"echo_token_delay_ms": 50, "disconnect_grace_s": 0.3})
    sid, _job_id, response = await start_slow(gateway, words=200)
    with capture_logs() as logs:
        await read_until_seq(response, 10)
        response.close()  # type: ignore[attr-defined]
        for _ in range(100):
            assistant = (await messages_of(gateway, sid))[1]
            if assistant["status"] != "streaming":
                break
            await asyncio.sleep(0.1)
    [stopped] = cancelled_lines(logs)
    assert stopped["reason"] == "abandoned"
    assert assistant["status"] == "cancelled"
    assert 0 < len(assistant["content"]) < len(slow_words(200))


async def test_a_queued_job_cancelled_twice_ends_cancelled_when_a_worker_takes_it(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    gateway = await start_gateway(real_connections)
    sid, job_id, response = await start_slow(gateway)
    for _ in range(2):
        cancel = await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)
        assert cancel.status == 202
    await start_worker(real_connections)
    events = job_events(parse_sse(await response.read()))  # type: ignore[attr-defined]
    assert [e["type"] for e in events] == ["start", "end"]
    assert events[-1]["finishReason"] == "cancelled" and events[-1]["content"] == ""
    assert (await messages_of(gateway, sid))[1]["status"] == "cancelled"


class FinishesAtOnce:
    """Answers without passing a single checkpoint."""

    async def run(self, run: JobRun) -> PipelineResult:
        return PipelineResult(finish_reason=events.FINISH_STOP)


async def test_a_queued_cancelled_job_whose_pipeline_passes_no_checkpoint_ends_cancelled(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory
) -> None:
    # The cancel flag is read along with the job's first event, not before it: the pipeline
    # may be done before the flag is known, and the job must still end cancelled.
    gateway = await start_gateway(real_connections)
    _sid, job_id, response = await start_slow(gateway)
    assert (await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)).status == 202
    assert real_connections.amqp_url
    redis = connect_redis(real_connections)
    queue = AmqpJobQueue(real_connections.amqp_url, real_connections.names, timeout_s=2.0)
    queue.start()
    worker = Worker(
        worker_settings(real_connections), redis, queue, pipelines={"echo": FinishesAtOnce()}
    )
    await worker.start()
    try:
        events_seen = job_events(parse_sse(await response.read()))  # type: ignore[attr-defined]
    finally:
        await worker.close()
        await redis.aclose()
    assert [e["type"] for e in events_seen] == ["start", "end"]
    assert events_seen[-1]["finishReason"] == "cancelled"


async def test_cancelling_a_job_that_ended_by_itself_is_409(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "quick one", "pipeline": "echo"}, headers=AUTH
    )
    await response.read()
    late = await gateway.post(
        f"/api/v1/streams/{response.headers['X-Job-Id']}/cancel", headers=AUTH
    )
    assert late.status == 409 and (await late.json())["error"]["code"] == "conflict"


async def test_a_last_event_id_of_non_ascii_digits_is_422_not_500(gateway: Client) -> None:
    response = await gateway.post(
        "/api/v1/chat/stream", json={"text": "digits", "pipeline": "echo"}, headers=AUTH
    )
    await response.read()
    job_id = response.headers["X-Job-Id"]
    for raw in ("\u00b2", "\u0661\u0662", "-1", "1.5"):
        bad = await gateway.get(
            f"/api/v1/streams/{job_id}", params={"lastEventId": raw}, headers=AUTH
        )
        assert bad.status == 422, raw


async def test_head_on_a_streaming_get_starts_nothing(gateway: Client) -> None:
    response = await gateway.head(
        "/api/v1/question/stream", params={"question": "hi", "pipeline": "echo"}, headers=AUTH
    )
    assert response.status == 405
    listed = await (await gateway.get("/api/v1/sessions", headers=AUTH)).json()
    assert listed["sessions"] == []


async def test_a_job_cancelled_while_queued_behind_a_busy_worker_ends_cancelled(
    real_connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> None:
    # The worker's cancel listener hears the job's cancel while the job waits in the queue,
    # before the worker runs it: the job's flag stops it, and its pipeline never runs.
    gateway = await start_gateway(real_connections)
    await start_worker(real_connections, concurrency=1, echo_token_delay_ms=50)
    _busy_sid, busy_job, busy = await start_slow(gateway, words=200)
    await read_until_seq(busy, 10)
    sid, job_id, response = await start_slow(gateway)
    assert (await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)).status == 202
    assert (await gateway.post(f"/api/v1/streams/{busy_job}/cancel", headers=AUTH)).status == 202
    events_seen = job_events(parse_sse(await response.read()))  # type: ignore[attr-defined]
    assert [e["type"] for e in events_seen] == ["start", "end"]
    assert events_seen[-1]["finishReason"] == "cancelled" and events_seen[-1]["content"] == ""
    assert (await messages_of(gateway, sid))[1]["status"] == "cancelled"


async def test_a_cancelled_job_given_back_to_the_same_worker_still_ends_cancelled(
    real_connections: ConnectionSettings,
    start_gateway: GatewayFactory,
    start_worker: WorkerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The cancelled run's final write fails (as when Redis stays away past the publish retry
    # bound), so the job goes back to the queue and the broker hands it to the one worker again.
    # That worker's listener heard the cancel while the job was running: the redelivered run
    # must read the flag.
    failed_ends: list[str] = []
    real_end = JobRun.end

    async def end_failing_once(self: JobRun, finish_reason: str, citations: Any = None) -> None:
        if not failed_ends:
            failed_ends.append(finish_reason)
            raise EventPublishError(self.job.job_id)
        await real_end(self, finish_reason, citations)

    monkeypatch.setattr(JobRun, "end", end_failing_once)
    gateway = await start_gateway(real_connections)
    await start_worker(real_connections, concurrency=1, echo_token_delay_ms=50)
    _sid, job_id, response = await start_slow(gateway, words=40)
    await read_until_seq(response, 12)
    assert (await gateway.post(f"/api/v1/streams/{job_id}/cancel", headers=AUTH)).status == 202
    rest = job_events(parse_sse(await response.read()))  # type: ignore[attr-defined]
    assert failed_ends == ["cancelled"]
    assert "reset" in [e["type"] for e in rest]
    assert rest[-1]["type"] == "end" and rest[-1]["finishReason"] == "cancelled"
