"""The fanout's recovery, without Redis: when the listener says channels are live again, their
streams are held at once, so that a message read right after the confirmation waits for the
backfill instead of jumping ahead of the events the log still has to hand over; a channel live
again while its log is read is read again; only the channels named are backfilled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection

import pytest
from redis.asyncio import Redis

import gateway.fanout
from gateway.fanout import EventFanout
from shared import replay_log
from shared.events import Event, encode_event
from shared.names import Names
from tests.support.redis_cluster import Collector

NAMES = Names("recovery")


class Listener:
    """Stands in for the pub/sub listener: every subscription is confirmed at once, and the test
    calls what the fanout gave it, as the listener would."""

    def __init__(
        self,
        *,
        on_message: Callable[[bytes, bytes], None],
        on_live: Callable[[Collection[str]], None],
        **_: object,
    ) -> None:
        self.on_message = on_message
        self.on_live = on_live

    async def subscribe(self, channel: str) -> None:
        pass

    def unsubscribe(self, channel: str) -> None:
        pass

    async def close(self) -> None:
        pass


class Log:
    """Stands in for the replay logs: each job's events, read after a seq; a read can be made
    to wait."""

    def __init__(self) -> None:
        self.events: dict[str, list[Event]] = {}
        self.reads: list[str] = []
        self.gate: asyncio.Event | None = None

    async def read_after(
        self, _redis: object, _names: Names, job_id: str, after: int
    ) -> list[Event]:
        self.reads.append(job_id)
        if self.gate is not None:
            await self.gate.wait()
        return [event for event in self.events.get(job_id, []) if event.seq > after]


@pytest.fixture
async def fanout(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EventFanout]:
    monkeypatch.setattr(
        gateway.fanout, "listener_for", lambda _redis, **options: Listener(**options)
    )
    fanout = EventFanout(Redis(), NAMES, "test", timeout_s=1.0)
    yield fanout
    await fanout.close()


def listener_of(fanout: EventFanout) -> Listener:
    listener = fanout._listener
    assert isinstance(listener, Listener)
    return listener


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> Log:
    log = Log()
    monkeypatch.setattr(replay_log, "read_after", log.read_after)
    return log


def event(job_id: str, seq: int) -> Event:
    return Event(job_id=job_id, seq=seq, type="token", payload={"n": seq})


def live(fanout: EventFanout, job_id: str, seq: int) -> None:
    """A message read off the link."""
    raw = encode_event(event(job_id, seq))
    listener_of(fanout).on_message(NAMES.job_channel(job_id).encode(), raw)


def told_live(fanout: EventFanout, channels: Collection[str]) -> None:
    """The listener tells the fanout that ``channels`` are live again."""
    listener_of(fanout).on_live(channels)


async def settled() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_a_message_read_right_after_the_confirmation_waits_for_the_backfill(
    fanout: EventFanout, log: Log
) -> None:
    stream, other = Collector(), Collector()
    await fanout.subscribe("job", stream)
    await fanout.subscribe("other", other)
    for seq in (1, 2):
        live(fanout, "job", seq)
        live(fanout, "other", seq)
    # 3 and 4 were published while the channel was not live: only the log has them.
    log.events["job"] = [event("job", seq) for seq in (1, 2, 3, 4, 5)]
    told_live(fanout, [NAMES.job_channel("job")])
    live(fanout, "job", 5)
    live(fanout, "other", 3)
    await settled()
    assert stream.seqs == [1, 2, 3, 4, 5]
    assert stream.from_log == 2
    # Only the channel named was held and read.
    assert log.reads == ["job"]
    assert (other.seqs, other.holds) == ([1, 2, 3], 0)


async def test_a_channel_live_again_while_its_log_is_read_is_read_again(
    fanout: EventFanout, log: Log
) -> None:
    stream = Collector()
    await fanout.subscribe("job", stream)
    live(fanout, "job", 1)
    log.events["job"] = [event("job", 1), event("job", 2)]
    log.gate = asyncio.Event()
    told_live(fanout, [NAMES.job_channel("job")])
    await settled()
    assert log.reads == ["job"]
    # A second outage ends while the first read waits: what it swallowed may be past that read.
    log.events["job"].append(event("job", 3))
    told_live(fanout, [NAMES.job_channel("job")])
    live(fanout, "job", 4)
    log.gate.set()
    await settled()
    assert log.reads == ["job", "job"]
    assert stream.seqs == [1, 2, 3, 4]
    assert stream.holds == 1
