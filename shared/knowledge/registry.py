"""Who may read and write a project: its creator (the first upload claims it), and every user
for the projects named in ``PUBLIC_PROJECTS``.

A public project is written by the operator (``chatstream ingest``), never through the API,
so no user can change what every other user reads.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from shared.names import Names
from shared.redis_client import RedisClient

# Project names become part of Redis keys, so they are kept to a safe alphabet.
PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def valid_project_name(project: str) -> bool:
    return PROJECT_NAME.fullmatch(project) is not None


async def owner_of(redis: RedisClient, names: Names, project: str) -> str | None:
    raw = await redis.get(names.project_owner(project))
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def can_read(
    redis: RedisClient,
    names: Names,
    user_id: str,
    project: str,
    public: Collection[str] = ("docs",),
) -> bool:
    """Whether ``user_id`` may read ``project``: a public one, or one the user created."""
    if not valid_project_name(project):
        return False
    if project in public:
        return True
    return await owner_of(redis, names, project) == user_id


async def can_write(
    redis: RedisClient,
    names: Names,
    user_id: str,
    project: str,
    public: Collection[str] = ("docs",),
) -> bool:
    """Whether ``user_id`` may add to ``project``: one nobody has claimed yet, or their own."""
    if not valid_project_name(project) or project in public:
        return False
    owner = await owner_of(redis, names, project)
    return owner is None or owner == user_id


async def claim(redis: RedisClient, names: Names, user_id: str, project: str) -> bool:
    """Make ``user_id`` the owner of an unclaimed project; True if they own it now."""
    await redis.set(names.project_owner(project), user_id, nx=True)
    return await owner_of(redis, names, project) == user_id
