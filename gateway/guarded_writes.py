"""A turn's checks and its writes: the request's rate-limit hit, the job's lease (a stream's or
a waiting completion's) and the session's owner must all allow them, or nothing is stored.

Two steps, each on keys of one slot (docs/redis-cluster.md): the user's, which takes the hit and
the lease and files the session in the user's index, and then the session's, which checks the
owner and writes the turn. A cluster runs them as two scripts, one round trip each; one Redis
runs them as one script, in one round trip, as it ran the checks and writes before they were
split: checks that cost a round trip of their own before the writes were about half of the
gateway's share of the time to first token."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from gateway.limits import ACQUIRE_LEASE_FUNCTION, LeaseClaim, RateHit
from shared import redis_scripts
from shared.redis_client import RedisClient, RedisPipeline, is_cluster

# keys: the user's sessions index, then the rate window if argv[1] is not '', then the stream
# leases if argv[3] is not ''. argv: the rate limit and the window's expiry; the lease's
# arguments (now, expiry, max streams, stream id); the session's id, its score, and whether
# it is 'new' (filed) or not (its entry, if the user has one, moves up; another user's id is
# never filed). Returns {verdict, count}: the hit's count, or false without one.
_ADMIT_FUNCTION = (
    ACQUIRE_LEASE_FUNCTION
    + """
local function admit(keys, argv)
  local next_key = 2
  local count = false
  if argv[1] ~= '' then
    count = redis.call('INCR', keys[next_key])
    redis.call('EXPIRE', keys[next_key], argv[2])
    next_key = next_key + 1
    if count > tonumber(argv[1]) then
      return {'rate_limited', count}
    end
  end
  if argv[3] ~= '' and acquire_lease(keys[next_key], argv[3], argv[4], argv[5], argv[6]) == 0 then
    return {'no_lease', count}
  end
  redis.call('ZADD', keys[1], argv[9] == 'new' and 'NX' or 'XX', argv[8], argv[7])
  return {'ok', count}
end
"""
)

# keys: the session's hash, then every key the writes name. argv: the session's owner ('' for
# a new session: nothing to check); then the writes, each as its argument count and its
# arguments. Returns {'no_session'} or {'ok', the writes' replies...}.
_WRITE_FUNCTION = """
local unpack = unpack or table.unpack
local function owns(session_key, owner)
  return owner == '' or redis.call('HGET', session_key, 'userId') == owner
end
local function write_if_owned(keys, argv)
  if not owns(keys[1], argv[1]) then
    return {'no_session'}
  end
  local replies = {'ok'}
  local i = 2
  while i <= #argv do
    local n = tonumber(argv[i])
    replies[#replies + 1] = redis.call(unpack(argv, i + 1, i + n))
    i = i + n + 1
  end
  return replies
end
"""

# On a cluster, each on its own slot: the user's, then the session's.
_ADMIT = redis_scripts.LuaScript(_ADMIT_FUNCTION + "return admit(KEYS, ARGV)\n")
_WRITE_IF_OWNED = redis_scripts.LuaScript(_WRITE_FUNCTION + "return write_if_owned(KEYS, ARGV)\n")

# On one Redis, both in one call: the admission's keys and arguments first, their counts in
# ARGV[1] and ARGV[2]. Returns the admission's refusal (no_lease becomes no_session when the
# session is not the caller's), or {the writes' verdict, count, replies...}.
_ADMIT_THEN_WRITE = redis_scripts.LuaScript(
    _ADMIT_FUNCTION
    + _WRITE_FUNCTION
    + """
local admit_keys, admit_args = tonumber(ARGV[1]), tonumber(ARGV[2])
local admitted = admit({unpack(KEYS, 1, admit_keys)}, {unpack(ARGV, 3, 2 + admit_args)})
if admitted[1] == 'no_lease' and not owns(KEYS[admit_keys + 1], ARGV[3 + admit_args]) then
  admitted[1] = 'no_session'
end
if admitted[1] ~= 'ok' then
  return admitted
end
local written = write_if_owned({unpack(KEYS, admit_keys + 1)}, {unpack(ARGV, 3 + admit_args)})
written[1] = {written[1], admitted[2]}
return written
"""
)

_NO_LEASE_ARGS: list[float | int | str] = ["", "", "", ""]


class Verdict(enum.Enum):
    WRITTEN = "ok"
    RATE_LIMITED = "rate_limited"
    NO_SESSION = "no_session"
    NO_LEASE = "no_lease"


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """The session a turn writes to: its hash's key, its id and score in the user's sessions
    index, and whether the turn creates it (else its owner must be the caller)."""

    key: str
    session_id: str
    index_key: str
    score_ms: int
    new: bool


@dataclass(frozen=True, slots=True)
class Guard:
    """What must allow a turn's writes: the caller, the session, and each optional check None
    where it does not apply."""

    user_id: str
    session: SessionEntry
    rate: RateHit | None = None
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
    """Run the writes that ``stage`` stages into a pipeline if ``guard`` allows them: the rate
    hit, the session's owner and the lease, judged in that order, as one script judged them
    before a cluster split them (the lease is taken first; a lease taken for a turn the owner
    check refuses is given back, and a turn refused a lease is told first when its session is
    not the caller's: that is not worth retrying). The pipeline only records the commands (it is
    never sent), so the stores' staging methods serve here as they do in a transaction;
    their replies come back raw, without redis-py's per-command conversions (an HGETALL's is
    a flat list). Every command's first argument is its key. Lua's ``unpack`` bounds one
    command to about 8,000 words, far above a turn's."""
    admit_keys, admit_args = _admission(guard)
    write_keys, write_args = _writes(guard, stage)
    if is_cluster(redis):
        # The user's slot, then the session's: two round trips (three for a turn refused a
        # lease, whose session's owner is asked on its own).
        verdict, count = await _ADMIT.run(redis, admit_keys, admit_args)
        if verdict == b"no_lease" and not await _owned(redis, guard):
            verdict = b"no_session"
        written = (
            await _WRITE_IF_OWNED.run(redis, write_keys, write_args) if verdict == b"ok" else []
        )
    else:
        # One Redis takes both in one round trip (about a tenth of a millisecond of the time to
        # first token, docs/performance.md).
        counts = [len(admit_keys), len(admit_args)]
        reply = await _ADMIT_THEN_WRITE.run(
            redis, [*admit_keys, *write_keys], [*counts, *admit_args, *write_args]
        )
        if isinstance(reply[0], list):
            (written_verdict, count), *replies = reply
            verdict, written = b"ok", [written_verdict, *replies]
        else:
            (verdict, count), written = reply, []
    refused = Verdict(verdict.decode())
    if refused is not Verdict.WRITTEN:
        return Outcome(refused, count, [])
    if written[0] != b"ok":
        if guard.lease is not None:
            # Expires by itself when Redis does not take it back now.
            with contextlib.suppress(RedisError):
                await redis.zrem(guard.lease.key, guard.lease.args[3])
        return Outcome(Verdict.NO_SESSION, count, [])
    return Outcome(Verdict.WRITTEN, count, written[1:])


def _writes(guard: Guard, stage: Callable[[RedisPipeline], None]) -> tuple[list[Any], list[Any]]:
    """The session's script's keys and arguments: the owner check and what ``stage`` stages."""
    # Never sent: it only records the commands.
    recorder = Pipeline(None, {}, False, None)  # type: ignore[arg-type]
    stage(recorder)
    keys: list[Any] = [guard.session.key]
    writes: list[Any] = ["" if guard.session.new else guard.user_id]
    for command, _options in recorder.command_stack:
        keys.append(command[1])
        writes.append(len(command))
        writes.extend(command)
    return list(dict.fromkeys(keys)), writes


async def _owned(redis: RedisClient, guard: Guard) -> bool:
    """Whether the caller owns the session (a new one is theirs)."""
    if guard.session.new:
        return True
    return bool(await redis.hget(guard.session.key, "userId") == guard.user_id.encode())


def _admission(guard: Guard) -> tuple[list[Any], list[Any]]:
    """The user's script's keys and arguments: the rate hit, the lease, the index."""
    rate, lease, session = guard.rate, guard.lease, guard.session
    keys: list[Any] = [session.index_key]
    if rate is not None:
        keys.append(rate.key)
    if lease is not None:
        keys.append(lease.key)
    args = [
        rate.per_minute if rate else "",
        rate.key_ttl_s if rate else "",
        *(lease.args if lease else _NO_LEASE_ARGS),
        session.session_id,
        session.score_ms,
        "new" if session.new else "",
    ]
    return keys, args
