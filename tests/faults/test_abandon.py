"""Both servers failing at once, between storing a turn and sending its job: the job cannot be
queued, and Redis cannot take the turn's error either. The caller still gets the queue's error
(a 503 for the client), and the failed abandon is logged, not lost in a task nobody awaits."""

from __future__ import annotations

import pytest
from aiohttp import web
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway import appkeys
from gateway.turns import Turn
from launcher.ports import free_port
from shared.amqp import AmqpJobQueue
from shared.ids import new_id
from shared.job import Job
from shared.jobqueue import QueueUnavailableError
from shared.messages import MessageStore, StoredTurn
from shared.names import Names
from shared.sessions import new_session


async def test_a_turn_whose_job_and_abandon_both_fail_reports_the_queue_and_logs_the_rest() -> None:
    names = Names(f"test.abandon.{new_id()}")
    # Nothing listens on this port: every command fails to connect, as with Redis down.
    redis = Redis(port=free_port(), socket_connect_timeout=0.5)
    app = web.Application()
    app[appkeys.MESSAGES] = MessageStore(redis, names)
    # Never started, so never connected: what a gateway whose broker is down holds.
    app[appkeys.JOB_PUBLISHER] = AmqpJobQueue("amqp://127.0.0.1:1/", names, timeout_s=0.5)
    session = new_session("alice", "a title")
    job = Job(
        job_id=new_id(),
        session_id=session.id,
        message_id=new_id(),
        user_id="alice",
        pipeline="echo",
        text="hello",
    )
    stored = StoredTurn(
        session_id=session.id,
        user_id="alice",
        job_id=job.job_id,
        user_message_id=new_id(),
        assistant_message_id=job.message_id,
        text="hello",
    )
    pending = Turn(app, session, job, stored)
    try:
        with capture_logs() as logs, pytest.raises(QueueUnavailableError):
            await pending.submit()
    finally:
        await redis.aclose()
    [failed] = [line for line in logs if line["event"] == "turn.abandon_failed"]
    assert failed["job_id"] == job.job_id
    assert failed["message_id"] == job.message_id
