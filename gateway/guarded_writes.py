"""A turn's checks and its writes in one round trip: a Lua script takes the request's
rate-limit hit, checks that the session exists and is the caller's, takes the job's lease (a
stream's or a waiting completion's), and only if all three allow, runs the writes. A refused
turn stores nothing, as when the checks had a round trip of their own before the writes; that
round trip was about half of the gateway's share of the time to first token."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.limits import ACQUIRE_LEASE_FUNCTION, LeaseClaim, RateHit
from shared import redis_scripts
from shared.redis_client import RedisClient, RedisPipeline

# KEYS: the rate window to hit, the session whose owner is checked, the user's stream leases;
# '' skips that check. ARGV: the rate limit and the window's expiry; the session's owner; the
# lease's arguments (now, expiry, max streams, stream id); then the writes, each as its
# argument count and its arguments. The checks are judged in that order, the first refusal
# returned as {reason, count}; otherwise {'ok', count, the writes' replies...}. The writes
# name their own keys: chatstream runs on one Redis, not a cluster.
_GUARDED_WRITES = redis_scripts.LuaScript(
    ACQUIRE_LEASE_FUNCTION
    + """
local unpack = unpack or table.unpack
local count = false
if KEYS[1] ~= '' then
  count = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  if count > tonumber(ARGV[1]) then
    return {'rate_limited', count}
  end
end
if KEYS[2] ~= '' and redis.call('HGET', KEYS[2], 'userId') ~= ARGV[3] then
  return {'no_session', count}
end
if KEYS[3] ~= '' and acquire_lease(KEYS[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]) == 0 then
  return {'no_lease', count}
end
local replies = {'ok', count}
local i = 8
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  replies[#replies + 1] = redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return replies
"""
)

_NO_LEASE_ARGS: list[float | int | str] = ["", "", "", ""]


class Verdict(enum.Enum):
    WRITTEN = "ok"
    RATE_LIMITED = "rate_limited"
    NO_SESSION = "no_session"
    NO_LEASE = "no_lease"


@dataclass(frozen=True, slots=True)
class SessionOwner:
    """A stored session (its hash's key) and the user who must own it."""

    key: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Guard:
    """What must allow a turn's writes: each part None where it does not apply."""

    rate: RateHit | None = None
    # None for a new session: nothing to check.
    session: SessionOwner | None = None
    lease: LeaseClaim | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    # The rate window's count with this hit (None without one).
    count: int | None
    # The writes' replies as Redis gave them, in order (empty unless written).
    replies: list[Any]


async def write_if_allowed(
    redis: RedisClient, guard: Guard, stage: Callable[[RedisPipeline], None]
) -> Outcome:
    """Run the writes that ``stage`` stages into a pipeline, if ``guard`` allows them, in one
    round trip. The pipeline only records the commands (it is never executed), so the
    stores' staging methods serve here as they do in a transaction; their replies come back
    raw, without redis-py's per-command conversions (an HGETALL's is a flat list). Lua's
    ``unpack`` bounds one command to about 8,000 words, far above a turn's."""
    recorder = redis.pipeline(transaction=False)
    stage(recorder)
    writes: list[Any] = []
    for command, _options in recorder.command_stack:
        writes.append(len(command))
        writes.extend(command)
    rate, session, lease = guard.rate, guard.session, guard.lease
    keys = [
        rate.key if rate else "",
        session.key if session else "",
        lease.key if lease else "",
    ]
    args = [
        rate.per_minute if rate else "",
        rate.key_ttl_s if rate else "",
        session.user_id if session else "",
        *(lease.args if lease else _NO_LEASE_ARGS),
        *writes,
    ]
    verdict, count, *replies = await _GUARDED_WRITES.run(redis, keys, args)
    return Outcome(Verdict(verdict.decode()), count, replies)


def hash_reply(flat: list[Any]) -> dict[Any, Any]:
    """An HGETALL's raw reply (field, value, field, value...) as redis-py's HGETALL gives it."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
