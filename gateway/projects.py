"""Which projects (knowledge collections) a caller may chat with."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys
from gateway.auth import user_of
from gateway.errors import not_found
from shared.knowledge.registry import can_read, can_write


async def require_project(request: web.Request, project: str, *, write: bool = False) -> str:
    """The project name if the caller may read it (or write to it); 404 otherwise, as if it
    did not exist."""
    settings = request.app[appkeys.SETTINGS]
    check = can_write if write else can_read
    allowed = await check(
        request.app[appkeys.REDIS],
        settings.connections.names,
        user_of(request),
        project,
        settings.rag.public_projects,
    )
    if not allowed:
        raise not_found("project")
    return project
