"""A three-node RabbitMQ cluster of the test's own: the node that leads the quorum job queue,
which the gateway and the worker are connected to, is SIGKILLed while chats are being sent and
answered. Both move to a surviving node by themselves; every job whose publish was confirmed
(answered 200) streams to its end, none is lost; requests meanwhile get 200 or 503 with
Retry-After; the queue ends empty."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import aio_pika
import aiohttp
import pytest
from yarl import URL

from shared.amqp import declare_topology
from shared.amqp_nodes import join_nodes
from shared.settings import ConnectionSettings
from tests.conftest import AUTH
from tests.support.followed_streams import assert_whole, follow_to_end
from tests.support.processes import chat_processes
from tests.support.rabbitmq_cluster import LocalRabbitCluster, RabbitNode

TEXT = " ".join(f"word{i}" for i in range(12))
# Chats sent at once, each sender one after the other.
SENDERS = 4
# Confirmed jobs before the leader is killed, and the ones after it that show service is back.
BEFORE_KILL = 12
AFTER_KILL = 12
# A bound on the sending, so that a gateway that never recovers fails the test, not hangs it.
MAX_SENDS = 400
# Bounds on a hang, not on speed.
SETTLE_S = 60.0


@pytest.fixture(scope="module")
def rabbit_cluster() -> Iterator[LocalRabbitCluster]:
    """Booting and joining three nodes takes about 15 s, so the module shares them. The test
    below kills one: a test added after it finds two."""
    cluster = LocalRabbitCluster(size=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@dataclass
class Sent:
    """What the chats sent so far got."""

    confirmed: list[tuple[str, aiohttp.ClientResponse]] = field(default_factory=list)
    refused: int = 0
    after_kill: int = 0
    killed: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.mark.timeout(300)
async def test_no_confirmed_job_is_lost_when_the_queue_leader_is_killed(
    rabbit_cluster: LocalRabbitCluster, real_connections: ConnectionSettings, tmp_path: Path
) -> None:
    names = real_connections.names
    # The queue is declared here first, on the second node: its leader is the node it was
    # declared on (the default placement) and the processes are pointed at that node first,
    # whichever it turns out to be.
    await _declare_on(rabbit_cluster.nodes[1], real_connections)
    leader, members = rabbit_cluster.queue_members(names.jobs_queue)
    assert sorted(m.name for m in members) == sorted(n.name for n in rabbit_cluster.nodes)
    ordered = [leader, *(node for node in rabbit_cluster.nodes if node is not leader)]
    connections = replace(
        real_connections, amqp_url=join_nodes(tuple(node.url for node in ordered))
    )
    processes = chat_processes(connections, tmp_path)
    try:
        gateway = await processes.gateway(CONNECT_TIMEOUT_S="0.5")
        worker = await processes.worker(ECHO_TOKEN_DELAY_MS="20")
        for service in (gateway, worker):
            assert _port(service.events("amqp.connected")[0]["node"]) == leader.port

        sent = Sent()
        async with aiohttp.ClientSession() as http:
            senders = [
                asyncio.create_task(_send_until_back(http, gateway.url, sent))
                for _ in range(SENDERS)
            ]
            await _kill_when_confirmed(leader, sent, senders)
            await asyncio.gather(*senders)
            assert sent.after_kill >= AFTER_KILL, "publishing did not come back"

            # Every confirmed job runs to its end on a worker.
            for job_id, response in sent.confirmed:
                async with asyncio.timeout(SETTLE_S):
                    seen = await follow_to_end(http, gateway.url, job_id, response, [])
                assert_whole(seen, TEXT)

        survivors = {node.port for node in rabbit_cluster.nodes if node is not leader}
        for service in (gateway, worker):
            assert service.events("amqp.connection_lost"), service.name
            reconnected = await service.wait_events("amqp.reconnected", 1)
            assert reconnected, f"{service.name} did not reconnect"
            assert _port(reconnected[-1]["node"]) in survivors
        new_leader, _ = rabbit_cluster.queue_members(names.jobs_queue)
        assert new_leader is not leader
        await _wait_drained(rabbit_cluster, names.jobs_queue)
    finally:
        processes.stop_all()


async def _declare_on(node: RabbitNode, connections: ConnectionSettings) -> None:
    connection = await aio_pika.connect(node.url)
    async with connection:
        await declare_topology(await connection.channel(), connections.names)


async def _send_until_back(http: aiohttp.ClientSession, url: str, sent: Sent) -> None:
    """Send chats one after the other until enough were confirmed after the kill (or the
    bound on sends runs out); keep each confirmed one's stream open to read later."""
    for _ in range(MAX_SENDS // SENDERS):
        if sent.after_kill >= AFTER_KILL:
            return
        response = await http.post(
            f"{url}/api/v1/chat/stream",
            json={"text": TEXT, "pipeline": "echo"},
            headers=AUTH,
            # The stream is read later: no bound on the whole, only on each wait.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=SETTLE_S),
        )
        if response.status == 503:
            assert response.headers.get("Retry-After"), await response.text()
            response.close()
            sent.refused += 1
            await asyncio.sleep(0.1)
            continue
        assert response.status == 200, await response.text()
        sent.confirmed.append((response.headers["X-Job-Id"], response))
        if sent.killed.is_set():
            sent.after_kill += 1


async def _kill_when_confirmed(
    leader: RabbitNode, sent: Sent, senders: list[asyncio.Task[None]]
) -> None:
    """Kill the leader once ``BEFORE_KILL`` jobs are confirmed, with the senders still going
    and the first jobs' answers still streaming."""
    while len(sent.confirmed) < BEFORE_KILL:
        done = [task for task in senders if task.done()]
        if done:
            await done[0]  # a sender that stopped early failed: its error is the test's
            raise AssertionError("a sender stopped before the kill")
        await asyncio.sleep(0.02)
    leader.kill()
    sent.killed.set()


async def _wait_drained(cluster: LocalRabbitCluster, queue: str) -> None:
    """The queue holds nothing, ready or unacked, once the workers are done: every delivery,
    redelivered ones too, was settled."""
    async with asyncio.timeout(SETTLE_S):
        # Polled: RabbitMQ tells no one when a queue empties.
        while await asyncio.to_thread(cluster.messages, queue):  # noqa: ASYNC110
            await asyncio.sleep(0.5)


def _port(node_url: str) -> int | None:
    return URL(node_url).port
