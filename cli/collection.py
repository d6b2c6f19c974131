"""What the operator's collection commands (``ingest``, ``documents``) share: the project name
check, the real Redis from ``REDIS_URL``, and one line on stderr, not a traceback, for every
failure."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from shared.knowledge import KnowledgeStore, knowledge_store, valid_project_name
from shared.knowledge.store import KnowledgeError
from shared.redis_client import connect_redis
from shared.settings import ConnectionSettings, RagSettings, SettingsError

StoreAction = Callable[[KnowledgeStore], Awaitable[int]]


def fail(command: str, message: str) -> None:
    """An error of ``chatstream COMMAND``, on stderr."""
    print(f"chatstream {command}: {message}", file=sys.stderr)


def run_on_store(command: str, project: str, action: StoreAction) -> int:
    """Run ``action`` on the knowledge store of ``REDIS_URL``; its exit status, 2 for a usage
    error, 1 when Redis cannot be reached or holds what chatstream cannot read."""
    if not valid_project_name(project):
        fail(command, f"{project!r} is not a valid project name")
        return 2
    # Only Redis is needed here, so AMQP_URL is not required as the services require it.
    try:
        connections = ConnectionSettings.redis_only_from_env()
    except SettingsError as e:
        fail(command, str(e))
        return 2
    if connections.redis_url is None:
        fail(command, "set REDIS_URL (embedded mode ingests DOCS_DIR at start-up)")
        return 2
    return asyncio.run(_run(command, connections, RagSettings.from_env(), action))


async def _run(
    command: str, connections: ConnectionSettings, rag: RagSettings, action: StoreAction
) -> int:
    redis = connect_redis(connections)
    try:
        # Reached first, so that an outage is one line before any progress is drawn.
        await redis.ping()
        return await action(knowledge_store(redis, connections.names, rag))
    except RedisError as e:
        fail(command, f"Redis failed: {e}")
        return 1
    except KnowledgeError as e:
        fail(command, str(e))
        return 1
    finally:
        await redis.aclose()
