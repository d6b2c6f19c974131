"""The pub/sub listener against the real Redis: it hears what is published after a subscription
is confirmed; a link that goes silent, or a bug in its owner's callback, costs it a fresh
connection on which every channel is subscribed again, and its owner is told; a subscription
that cannot be sent fails at once; a link that stays down is not logged at every attempt."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection
from urllib.parse import urlsplit, urlunsplit

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from structlog.testing import capture_logs

from shared.pubsub_listener import PubSubListener, SubscribeError
from tests.conftest import REDIS_URL
from tests.support.tcp_proxy import TcpProxy

# Every test here talks to the real Redis.
pytestmark = pytest.mark.real


class Owner:
    """What a listener's owner sees: the messages, and each time it is live again."""

    def __init__(self, *, failures: int = 0) -> None:
        self.messages: asyncio.Queue[tuple[bytes, bytes]] = asyncio.Queue()
        self.lives = asyncio.Event()
        # One item per connection the listener makes.
        self.attempts: asyncio.Queue[None] = asyncio.Queue()
        self._failures = failures

    def on_message(self, channel: bytes, data: bytes) -> None:
        if self._failures:
            self._failures -= 1
            raise RuntimeError("a bug in the owner")
        self.messages.put_nowait((channel, data))

    def on_live(self, _channels: Collection[str]) -> None:
        self.lives.set()

    def listener(self, redis: Redis, *, channels: tuple[str, ...] = ()) -> PubSubListener:
        def connect() -> AbstractConnection:
            self.attempts.put_nowait(None)
            return redis.connection_pool.make_connection()

        return PubSubListener(
            connect,
            channels=channels,
            on_message=self.on_message,
            on_live=self.on_live,
            log_area="test",
            confirm_timeout_s=3600.0,
        )

    @contextlib.asynccontextmanager
    async def listening(
        self, redis: Redis, *, channels: tuple[str, ...] = ()
    ) -> AsyncIterator[PubSubListener]:
        """A listener started, and closed after."""
        listener = self.listener(redis, channels=channels)
        await listener.start()
        try:
            yield listener
        finally:
            await listener.close()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    async with Redis.from_url(REDIS_URL) as client:
        yield client


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", urlsplit(REDIS_URL).port or 6379)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.fixture
async def proxied(proxy: TcpProxy) -> AsyncIterator[Redis]:
    """A client whose connections go through ``proxy``."""
    url = urlsplit(REDIS_URL)._replace(netloc=f"127.0.0.1:{proxy.port}")
    async with Redis.from_url(urlunsplit(url)) as client:
        yield client


async def published_until_heard(redis: Redis, owner: Owner, channel: str) -> bytes:
    """Publish on ``channel`` until the listener hears it: a link being replaced hears nothing
    for a while."""
    for attempt in range(600):
        await redis.publish(channel, f"{attempt}")
        try:
            async with asyncio.timeout(0.1):
                heard, data = await owner.messages.get()
        except TimeoutError:
            continue
        assert heard == channel.encode()
        return data
    pytest.fail("the listener never heard the channel again")


async def test_a_confirmed_channel_hears_every_message_published_after(
    redis: Redis, namespace: str
) -> None:
    owner = Owner()
    async with owner.listening(redis, channels=(f"{namespace}.always",)) as listener:
        channels = [f"{namespace}.{i}" for i in range(50)]
        # Subscribed together: one command, and each returns once its channel is confirmed.
        await asyncio.gather(*map(listener.subscribe, channels))
        for channel in channels:
            assert await redis.publish(channel, b"x") == 1
        heard = [await owner.messages.get() for _ in channels]
        assert sorted(channel for channel, _ in heard) == sorted(c.encode() for c in channels)
        listener.unsubscribe(channels[0])
        await listener.subscribe(channels[1])  # already confirmed: at once
        assert await redis.publish(channels[1], b"y") == 1
        assert await owner.messages.get() == (channels[1].encode(), b"y")


async def test_a_bug_in_the_owner_costs_a_fresh_connection_with_every_channel(
    redis: Redis, namespace: str
) -> None:
    owner = Owner(failures=1)
    channel = f"{namespace}.job"
    async with owner.listening(redis) as listener:
        await listener.subscribe(channel)
        assert await redis.publish(channel, b"lost") == 1
        await owner.lives.wait()
        await published_until_heard(redis, owner, channel)


async def test_a_link_gone_silent_is_replaced_and_its_channels_subscribed_again(
    proxy: TcpProxy, proxied: Redis, redis: Redis, namespace: str
) -> None:
    owner = Owner()
    channel = f"{namespace}.job"
    async with owner.listening(proxied, channels=(channel,)):
        await published_until_heard(redis, owner, channel)
        proxy.freeze()  # nothing closes, nothing comes through
        await owner.lives.wait()
        await published_until_heard(redis, owner, channel)


async def test_a_subscription_that_cannot_be_sent_fails_at_once(
    proxy: TcpProxy, proxied: Redis, namespace: str
) -> None:
    # Its confirm timeout is an hour: only a failure at once ends the wait in time.
    owner = Owner()
    async with owner.listening(proxied) as listener:
        await proxy.cut()  # every connection dropped, new ones refused
        with pytest.raises(SubscribeError):
            await listener.subscribe(f"{namespace}.job")


async def test_a_link_that_stays_down_logs_its_first_failure_not_every_attempt(
    proxy: TcpProxy, proxied: Redis, redis: Redis, namespace: str
) -> None:
    owner = Owner()
    channel = f"{namespace}.job"
    with capture_logs() as logs:
        async with owner.listening(proxied, channels=(channel,)):
            for _ in range(2):
                await published_until_heard(redis, owner, channel)
                owner.lives.clear()
                while not owner.attempts.empty():
                    owner.attempts.get_nowait()
                await proxy.cut()
                # The live link, which the cut ends, then three new attempts that fail.
                for _ in range(4):
                    await owner.attempts.get()
                await proxy.restore()
                await owner.lives.wait()
    errors = [line for line in logs if line["event"] == "test.listener_error"]
    # One line per outage, each counting from the first failure of its own outage.
    assert [line["failures"] for line in errors] == [1, 1]


async def test_a_closed_listener_takes_no_subscription(redis: Redis, namespace: str) -> None:
    listener = Owner().listener(redis)
    await listener.start()
    await listener.close()
    with pytest.raises(SubscribeError):
        await listener.subscribe(f"{namespace}.job")
