"""Per-user limits shared by every gateway through Redis: requests per minute, and jobs in
flight. Whatever waits on a job (an open stream, a non-streaming completion) holds a lease that
its gateway renews while it waits, so a gateway that dies cannot leave a user locked out for
longer than one lease. The leases kept their first name, stream leases, as their setting kept
``MAX_STREAMS_PER_USER``."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass

from redis.exceptions import RedisError

from gateway.errors import ApiError
from shared import redis_scripts
from shared.logging import get_logger
from shared.names import Names
from shared.redis_client import RedisClient, is_redis_failure
from shared.tasks import cancel_and_wait

log = get_logger(__name__)

RATE_WINDOW_S = 60
# Each lease is renewed this many times per lease period, so it outlives a renewal or two that
# Redis could not take.
RENEWALS_PER_LEASE = 3
# Users' lease sets renewed per pipeline: bounds one round trip's size with many users.
RENEWAL_BATCH_USERS = 500

# Take one of a user's stream slots: the lease's own script and a turn's guarded writes
# (gateway/guarded_writes.py) both call it. Lapsed leases go first, so a gateway that died
# holds its slots for one lease at most.
ACQUIRE_LEASE_FUNCTION = """
local function acquire_lease(key, now, expiry, max_streams, stream_id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(max_streams) then
    return 0
  end
  redis.call('ZADD', key, expiry, stream_id)
  redis.call('EXPIRE', key, math.ceil(expiry - now) + 1)
  return 1
end
"""
# KEYS: the user's stream leases. ARGV: now, lease expiry, max streams, stream id.
_ACQUIRE_LEASE = redis_scripts.LuaScript(
    ACQUIRE_LEASE_FUNCTION + "return acquire_lease(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])\n"
)


def rate_limited(message: str, retry_after_s: int, *, limit: str, maximum: int) -> ApiError:
    """A 429 that names the setting it enforces, and its value, in its details."""
    return ApiError(
        429,
        message,
        details={"limit": limit, "max": maximum},
        headers={"Retry-After": str(max(1, retry_after_s))},
    )


@dataclass(frozen=True, slots=True)
class RateHit:
    """One request's hit on its user's window: an INCR of ``key``, which expires a little
    after the window."""

    key: str
    per_minute: int
    at: float
    window: int
    key_ttl_s: int = RATE_WINDOW_S + 1

    def check(self, count: int) -> None:
        """Raise 429 if ``count``, the window's count with this hit, is over the limit."""
        if int(count) > self.per_minute:
            raise self.refusal()

    def refusal(self) -> ApiError:
        """The 429 of a hit over the limit: retry once the window is over."""
        retry_after = math.ceil((self.window + 1) * RATE_WINDOW_S - self.at)
        return rate_limited(
            f"at most {self.per_minute} requests a minute; slow down",
            retry_after,
            limit="RATE_LIMIT_PER_MINUTE",
            maximum=self.per_minute,
        )


class RateLimiter:
    """A fixed one-minute window per user: one INCR per request."""

    def __init__(self, redis: RedisClient, names: Names, per_minute: int) -> None:
        self._redis = redis
        self._names = names
        self._per_minute = per_minute

    async def hit(self, user_id: str) -> None:
        hit = self.new_hit(user_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(hit.key)
            pipe.expire(hit.key, hit.key_ttl_s)
            count, _ = await pipe.execute()
        hit.check(count)

    def new_hit(self, user_id: str) -> RateHit:
        """A hit on ``user_id``'s current window, for a caller that sends it itself."""
        now = time.time()
        window = int(now // RATE_WINDOW_S)
        return RateHit(self._names.user_rate(user_id, window), self._per_minute, now, window)


@dataclass(frozen=True, slots=True)
class LeaseClaim:
    """One stream's lease, to be taken: the user's lease set and ``acquire_lease``'s other
    arguments (now, expiry, max streams, stream id)."""

    key: str
    args: list[float | int | str]


class StreamLeases:
    """Takes, renews and gives back the leases of a user's jobs in flight (each stream and each
    waiting completion holds one). The leases held here are renewed together, one pipeline per
    user batch every third of a lease, by one background task (:meth:`start`, :meth:`close`)
    rather than one command per stream per heartbeat."""

    def __init__(
        self, redis: RedisClient, names: Names, *, max_streams: int, lease_s: float
    ) -> None:
        self._redis = redis
        self._names = names
        self._max_streams = max_streams
        self._lease_s = lease_s
        # Per user, the leases this gateway holds for its streams and waiting completions.
        self._held: dict[str, set[str]] = {}
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, user_id: str, stream_id: str) -> None:
        """Take one of the user's job slots, or raise 429."""
        self.check_granted(
            await _ACQUIRE_LEASE.run(
                self._redis, [self._names.user_streams(user_id)], self._acquire_args(stream_id)
            )
        )

    def claim(self, user_id: str, stream_id: str) -> LeaseClaim:
        """:meth:`acquire`'s key and arguments, for a caller that takes the lease in a script
        of its own (``acquire_lease`` of :data:`ACQUIRE_LEASE_FUNCTION`)."""
        return LeaseClaim(self._names.user_streams(user_id), self._acquire_args(stream_id))

    def check_granted(self, granted: object) -> None:
        if not granted:
            raise self.refusal()

    def refusal(self) -> ApiError:
        """The 429 of a lease not granted: retry once a lease could have lapsed."""
        return rate_limited(
            f"at most {self._max_streams} streams and completions may be in flight at once",
            math.ceil(self._lease_s),
            limit="MAX_STREAMS_PER_USER",
            maximum=self._max_streams,
        )

    def _acquire_args(self, stream_id: str) -> list[float | int | str]:
        now = time.time()
        return [now, now + self._lease_s, self._max_streams, stream_id]

    def hold(self, user_id: str, stream_id: str) -> None:
        """Keep renewing an acquired lease until :meth:`release`."""
        self._held.setdefault(user_id, set()).add(stream_id)

    async def release(self, user_id: str, stream_id: str) -> None:
        """Give the lease back. It often runs shielded after its stream's handler was cancelled,
        with nobody to hand an error to; a lease Redis did not take back expires by itself."""
        held = self._held.get(user_id)
        if held is not None:
            held.discard(stream_id)
            if not held:
                del self._held[user_id]
        with contextlib.suppress(RedisError):
            await self._redis.zrem(self._names.user_streams(user_id), stream_id)

    def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(
            self._renew_forever(), name="stream-lease-renewer"
        )

    async def close(self) -> None:
        await cancel_and_wait(self._renewer)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / RENEWALS_PER_LEASE)
            try:
                await self.renew_held()
            except Exception as e:
                # Renewed at the next tick; a lease missed for a whole period lapses. Whatever
                # failed (a cluster node failing can surface as other than a RedisError): a
                # renewer that ended would let every lease lapse.
                log.warning(
                    "stream_leases.renew_failed",
                    error=str(e) or type(e).__name__,
                    # A bug, not an outage: where it happened.
                    exc_info=not is_redis_failure(e),
                )

    async def renew_held(self) -> None:
        """Push every held lease's expiry a lease period ahead. XX: a lease released meanwhile
        (its ZREM may overtake this pipeline) is not brought back."""
        expiry = time.time() + self._lease_s
        key_ttl_s = math.ceil(self._lease_s) + 1
        users = [(user, list(streams)) for user, streams in self._held.items()]
        for start in range(0, len(users), RENEWAL_BATCH_USERS):
            batch = users[start : start + RENEWAL_BATCH_USERS]
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id, streams in batch:
                    key = self._names.user_streams(user_id)
                    pipe.zadd(key, dict.fromkeys(streams, expiry), xx=True)
                    pipe.expire(key, key_ttl_s)
                await pipe.execute()
