"""The ``validation`` step: the plan can be carried out. The project must be one the user may
read and must hold chunks. (The generator is known to be configured: settings that name one
that cannot run stop the worker at start-up.)"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from shared.knowledge import KnowledgeStore, can_read
from shared.names import Names
from shared.redis_client import RedisClient
from worker.pipelines.rag.planning import Plan


@dataclass(frozen=True, slots=True)
class Validation:
    ok: bool
    reason: str
    chunks: int
    index_version: int
    generator: str


async def validate_plan(
    plan: Plan,
    *,
    redis: RedisClient,
    names: Names,
    store: KnowledgeStore,
    user_id: str,
    public_projects: Collection[str],
) -> Validation:
    generator = plan.generator
    if not plan.retrieve:
        return Validation(True, "no sources needed", 0, 0, generator)
    readable = await can_read(redis, names, user_id, plan.project, public_projects)
    chunks = await store.chunk_count(plan.project) if readable else 0
    version = await store.index_version(plan.project) if readable else 0
    if not readable:
        return Validation(False, "the project does not exist", 0, 0, generator)
    if chunks == 0:
        return Validation(False, "the project has no documents", 0, version, generator)
    return Validation(True, "ready", chunks, version, generator)
