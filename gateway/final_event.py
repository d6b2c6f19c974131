"""A non-streaming completion's turn: stored, its job sent, and its final event waited for
without streaming it.

The turn takes one of its user's job slots in the round trip that stores it, as a streaming
turn does (gateway/relay.py), so that ``MAX_STREAMS_PER_USER`` caps the jobs a user waits on
through any route. The job's frames come through the same fanout and :class:`ClientStream` a
stream uses; only the consumer differs: it keeps the last frame instead of writing each one to
a socket.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway import appkeys
from gateway.client_stream import ClientStream
from gateway.errors import unavailable
from gateway.fanout import FanoutUnavailableError
from gateway.turns import Turn
from shared import events
from shared.events import Event
from shared.ids import new_id
from shared.jobqueue import QueueUnavailableError


class JobTimeoutError(Exception):
    """The job did not end within the time the caller would wait."""


async def wait_for_final_event(request: web.Request, turn: Turn, timeout_s: float) -> Event:
    """Store ``turn``, send its job and return its ``end`` or ``error`` event. Past the user's
    cap on jobs in flight the store raises 429 and writes nothing. The turn's lease is renewed
    while the completion waits and given back however the wait ends: the job's end, the
    timeout, a failure, or a client that left (which cancels the handler)."""
    leases = request.app[appkeys.STREAM_LEASES]
    user_id = turn.job.user_id
    lease_id = new_id()
    # Held before the store takes it, as a stream's is (a renewal never brings back a lease
    # that was not taken): a store cancelled after its script ran is released below too.
    leases.hold(user_id, lease_id)
    try:
        await turn.store(lease_id)
        return await _send_and_wait(request.app, turn, timeout_s)
    finally:
        # Runs to its end even in a cancelled handler.
        await asyncio.shield(leases.release(user_id, lease_id))


async def _send_and_wait(app: web.Application, turn: Turn, timeout_s: float) -> Event:
    job = turn.job
    fanout = app[appkeys.FANOUT]
    client = ClientStream(
        max_buffer_bytes=app[appkeys.SETTINGS].slow_client_buffer_bytes,
        ticker=app[appkeys.HEARTBEAT_TICKER],
    )
    try:
        # Subscribed before the job is sent, so that no event can be missed.
        await fanout.subscribe(job.job_id, client)
    except FanoutUnavailableError as e:
        # Stored, never to be sent: its answer is an error, not one streaming forever.
        await asyncio.shield(turn.abandon())
        raise unavailable("the event store cannot be reached") from e
    try:
        try:
            await asyncio.shield(turn.submit())
        except QueueUnavailableError as e:
            raise unavailable("the job queue cannot be reached") from e
        try:
            async with asyncio.timeout(timeout_s):
                return await _final_frame(client)
        except TimeoutError as e:
            raise JobTimeoutError(job.job_id) from e
    finally:
        client.stop_alarm()
        fanout.unsubscribe(job.job_id, client)


async def _final_frame(client: ClientStream) -> Event:
    # The buffer is drained on every wake-up, so its size limit never matters here; the
    # caller's timeout bounds the loop.
    loop = asyncio.get_running_loop()
    while True:
        if await client.wait(loop.time() + 60.0):
            for frame in client.take():
                if frame.type in events.TERMINAL_TYPES:
                    return frame
