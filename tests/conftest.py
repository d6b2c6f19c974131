"""Fixtures: every test gets its own namespace (Redis key prefix, AMQP queue and exchange names),
and a test that used the real servers cleans its namespace up on them afterwards.

A test that needs the real Redis and RabbitMQ carries the ``real`` marker, so that ``make unit``
runs without them: the fixtures below mark it when it asks for the real servers through them
(see ``pytest_collection_modifyitems``); a test that reaches them another way is marked by
hand."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from bench.purge import purge_namespace as purge
from gateway.app import create_app
from launcher.embedded import create_embedded_app
from launcher.local_redis import LocalRedisCluster, running
from shared import tracing
from shared.amqp import AmqpJobQueue
from shared.names import Names
from shared.redis_client import RedisClient, connect_redis
from shared.settings import ConnectionSettings, EventLogSettings, GatewaySettings, WorkerSettings
from tests.support.redis_server import PrivateRedis
from worker.metrics import WorkerMetrics
from worker.worker import Worker

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

API_KEY = "test-key-alice"
OTHER_API_KEY = "test-key-bob"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
OTHER_AUTH = {"Authorization": f"Bearer {OTHER_API_KEY}"}

# Fixtures that reach the real servers: a test that asks for one, directly or through another
# fixture, needs them.
REAL_SERVER_FIXTURES = {"real_connections"}
PROCESS_FIXTURES = {"processes"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``cluster_too`` that reaches the real servers runs once on the one Redis
    and once on a local Redis Cluster (``redis_cluster``)."""
    if (
        metafunc.definition.get_closest_marker("cluster_too") is not None
        and "redis_topology" in metafunc.fixturenames
    ):
        metafunc.parametrize("redis_topology", ["standalone", "cluster"], indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & (REAL_SERVER_FIXTURES | PROCESS_FIXTURES):
            item.add_marker(pytest.mark.real)
        if fixtures & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.process)


def unique_namespace(label: str) -> str:
    safe = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"test.{safe}.{uuid.uuid4().hex[:10]}"


async def purge_namespace(names: Names) -> None:
    """Delete every Redis key and AMQP entity of a test namespace."""
    await purge(names, REDIS_URL, AMQP_URL)


@pytest.fixture
async def namespace(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    ns = unique_namespace(request.node.name)
    yield ns
    if request.node.get_closest_marker("real") is not None:
        await purge_namespace(Names(ns))


def real_server_connections(namespace: str) -> ConnectionSettings:
    """The real servers, in ``namespace``."""
    return ConnectionSettings(
        redis_url=REDIS_URL, amqp_url=AMQP_URL, namespace=namespace, connect_timeout_s=1.0
    )


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A Redis Cluster of 3 primaries and 3 replicas on free ports, shared by the tests that
    only use it (each in its own namespace) and thrown away, keys and all, after the run; a
    test that kills or moves something starts its own."""
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    with running(cluster):
        yield cluster


@pytest.fixture
def redis_topology(request: pytest.FixtureRequest) -> str:
    """Where the real Redis is: "standalone" unless the test is marked ``cluster_too``."""
    return str(getattr(request, "param", "standalone"))


def cluster_connections(cluster: LocalRedisCluster, namespace: str) -> ConnectionSettings:
    """``cluster`` and the real RabbitMQ, in ``namespace``."""
    return ConnectionSettings(
        cluster_nodes=cluster.addresses,
        amqp_url=AMQP_URL,
        namespace=namespace,
        connect_timeout_s=1.0,
    )


@pytest.fixture
def real_connections(
    request: pytest.FixtureRequest, namespace: str, redis_topology: str
) -> ConnectionSettings:
    if redis_topology == "cluster":
        return cluster_connections(request.getfixturevalue("redis_cluster"), namespace)
    return real_server_connections(namespace)


@pytest.fixture(params=["embedded", pytest.param("real", marks=pytest.mark.real)])
def connections(
    request: pytest.FixtureRequest, namespace: str, redis_topology: str
) -> ConnectionSettings:
    """Both transports: the embedded in-process one and the real servers."""
    if request.param == "embedded":
        if redis_topology == "cluster":
            pytest.skip("the embedded transports have one topology")
        return ConnectionSettings(namespace=namespace)
    return request.getfixturevalue("real_connections")


def gateway_settings(connections: ConnectionSettings, **overrides: Any) -> GatewaySettings:
    base = GatewaySettings(
        connections=connections,
        api_keys={API_KEY: "alice", OTHER_API_KEY: "bob"},
        heartbeat_interval_s=15.0,
        # Load tests open many streams as one user; the limit tests set their own.
        max_streams_per_user=10_000,
        rate_limit_per_minute=1_000_000,
    )
    ttl = overrides.pop("event_log_ttl_s", None)
    if ttl is not None:
        base = replace(base, event_log=EventLogSettings(replay_ttl_s=ttl))
    return replace(base, **overrides)


def worker_settings(connections: ConnectionSettings, **overrides: Any) -> WorkerSettings:
    return replace(
        WorkerSettings(connections=connections, echo_token_delay_ms=0, worker_id="test-worker"),
        **overrides,
    )


GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
WorkerFactory = Callable[..., Awaitable[Worker]]


@pytest.fixture
def start_gateway(aiohttp_client: Any) -> GatewayFactory:
    async def start(
        connections: ConnectionSettings, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        worker_overrides = overrides.pop("worker", {})
        settings = gateway_settings(connections, **overrides)
        if connections.embedded:
            # The worker runs inside the gateway's process, as under `make run`.
            worker_overrides = {
                "worker_id": "embedded",
                "event_log": settings.event_log,
                **worker_overrides,
            }
            worker = worker_settings(connections, **worker_overrides)
            app = create_embedded_app(settings, worker)
        else:
            app = create_app(settings)
        client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
        return client

    return start


@pytest.fixture
async def start_worker() -> AsyncIterator[WorkerFactory]:
    """Start real workers (Redis + RabbitMQ) in this process; all are closed after the test."""
    started: list[tuple[Worker, RedisClient]] = []

    async def start(
        connections: ConnectionSettings, metrics: WorkerMetrics | None = None, **overrides: Any
    ) -> Worker:
        settings = worker_settings(connections, **overrides)
        assert connections.has_redis and connections.amqp_url is not None
        redis = connect_redis(connections)
        queue = AmqpJobQueue(connections.amqp_url, connections.names, timeout_s=2.0)
        queue.start()
        worker = Worker(settings, redis, queue, metrics=metrics)
        await worker.start()
        started.append((worker, redis))
        return worker

    yield start
    for worker, redis in reversed(started):
        await worker.close()
        await redis.aclose()


StackFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def make_stack(
    connections: ConnectionSettings, start_gateway: GatewayFactory, start_worker: WorkerFactory
) -> StackFactory:
    """A gateway with a worker behind it, on the parametrized transport. ``worker={...}``
    overrides the worker's settings whichever way it runs (embedded or real)."""

    async def make(**overrides: Any) -> TestClient[web.Request, web.Application]:
        worker_overrides = dict(overrides.get("worker", {}))
        if "event_log_ttl_s" in overrides:
            worker_overrides["event_log"] = EventLogSettings(
                replay_ttl_s=overrides["event_log_ttl_s"]
            )
        client = await start_gateway(connections, **overrides)
        if not connections.embedded:
            await start_worker(connections, **worker_overrides)
        return client

    return make


@pytest.fixture
async def gateway(make_stack: StackFactory) -> TestClient[web.Request, web.Application]:
    return await make_stack()


@pytest.fixture
async def processes(real_connections: ConnectionSettings, tmp_path: Any) -> AsyncIterator[Any]:
    """Real gateway and worker processes on the test's namespace, stopped after the test."""
    from tests.support.processes import chat_processes

    group = chat_processes(real_connections, tmp_path)
    try:
        yield group
    finally:
        group.stop_all()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A redis-server of the test's own, to kill, restart or flush without touching another
    test's."""
    server = PrivateRedis(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every span kept in memory as it ends (the SDK's in-memory
    exporter behind a simple processor, so nothing waits on a timer)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.install(None)
        provider.shutdown()
