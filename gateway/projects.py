"""Which projects (knowledge collections) a caller may chat with."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys
from gateway.errors import not_found


async def require_readable_project(request: web.Request, project: str) -> str:
    """The project name if the caller may read it; 404 otherwise, as if it did not exist."""
    settings = request.app[appkeys.SETTINGS]
    if project not in settings.public_projects:
        raise not_found("project")
    return project
