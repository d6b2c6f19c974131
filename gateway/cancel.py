"""Cancelling a job from any gateway: a flag (for a job no worker has started yet) and a
broadcast on the workers' cancel channel (for the one running it)."""

from __future__ import annotations

from shared.names import Names
from shared.redis_client import RedisClient, publish_command

# The flag outlives any wait in the queue a job could reasonably have.
CANCEL_FLAG_TTL_S = 24 * 3600


class JobCanceller:
    def __init__(self, redis: RedisClient, names: Names) -> None:
        self._redis = redis
        self._names = names

    async def cancel(self, job_id: str) -> None:
        # The flag and the broadcast may go to two nodes of a cluster: neither waits for the
        # other (a worker that hears the broadcast stops; one that starts later reads the flag).
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._names.job_cancel_flag(job_id), 1, ex=CANCEL_FLAG_TTL_S)
            pipe.execute_command(publish_command(self._redis), self._names.cancel_channel, job_id)
            await pipe.execute()
