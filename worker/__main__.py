"""``python -m worker``: one worker process on the real Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sys

import uvloop

from shared.amqp import AmqpJobQueue
from shared.gc_tuning import settle_after_startup
from shared.logging import bind_process_fields, configure_logging, get_logger
from shared.redis_client import connect_redis
from shared.settings import (
    LoggingSettings,
    TracingSettings,
    WorkerSettings,
    exit_on_settings_error,
)
from shared.tracing import configure_tracing, shutdown_tracing
from worker.health import readyz_handler
from worker.metrics import WorkerMetrics, metrics_endpoint
from worker.worker import Worker

log = get_logger("worker")


async def serve(settings: WorkerSettings) -> None:
    connections = settings.connections
    if not connections.has_redis or connections.amqp_url is None:
        raise SystemExit(
            "the worker needs Redis (REDIS_URL or REDIS_SENTINELS) and AMQP_URL (`make run` "
            "serves gateway and worker in one process without them: python -m launcher)"
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    redis = connect_redis(connections)
    queue = AmqpJobQueue(
        connections.amqp_url,
        connections.names,
        timeout_s=connections.connect_timeout_s,
        connection_name=f"chatstream worker {settings.worker_id}",
    )
    queue.start()
    metrics = WorkerMetrics(settings.worker_id)
    worker = Worker(settings, redis, queue, metrics=metrics)
    try:
        await worker.start()
        settle_after_startup()
        readyz = readyz_handler(redis, queue.ping, timeout_s=connections.connect_timeout_s)
        async with metrics_endpoint(settings, metrics, readyz=readyz) as metrics_port:
            log.info("worker.metrics", port=metrics_port)
            await stop.wait()
        log.info("worker.signal", action="drain")
    finally:
        await worker.close()
        await redis.aclose()


def main() -> None:
    with exit_on_settings_error():
        configure_logging("worker", LoggingSettings.from_env())
        settings = WorkerSettings.from_env()
        tracing = TracingSettings.from_env()
    worker_id = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    bind_process_fields(worker_id=worker_id)
    settings = dataclasses.replace(settings, worker_id=worker_id)
    provider = configure_tracing("worker", tracing)
    try:
        uvloop.run(serve(settings))
    finally:
        shutdown_tracing(provider)
    sys.exit(0)


if __name__ == "__main__":
    main()
