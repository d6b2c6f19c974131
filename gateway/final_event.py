"""A stored turn's job sent, and its final event waited for without streaming it (the
non-streaming OpenAI completion).

The job's frames come through the same fanout and :class:`ClientStream` a stream uses; only the
consumer differs: it keeps the last frame instead of writing each one to a socket.
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
from shared.jobqueue import QueueUnavailableError


class JobTimeoutError(Exception):
    """The job did not end within the time the caller would wait."""


async def wait_for_final_event(request: web.Request, turn: Turn, timeout_s: float) -> Event:
    """Send the stored ``turn``'s job and return its ``end`` or ``error`` event."""
    job = turn.job
    app = request.app
    fanout = app[appkeys.FANOUT]
    client = ClientStream(
        max_buffer_bytes=app[appkeys.SETTINGS].slow_client_buffer_bytes,
        ticker=app[appkeys.HEARTBEAT_TICKER],
    )
    try:
        # Subscribed before the job is sent, so that no event can be missed.
        await fanout.subscribe(job.job_id, client)
    except FanoutUnavailableError as e:
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
