"""Sessions and their messages: ``/api/v1/sessions`` (and ``/api/sessions``, seed 000's path)."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys
from gateway.auth import user_of
from gateway.body import read_body, validate
from gateway.errors import ApiError, not_found, validation_error
from gateway.schemas import CreateSessionBody, ListQuery, RenameSessionBody
from shared.ids import normalize_session_id
from shared.sessions import BadCursorError, Session, SessionConflictError

routes = web.RouteTableDef()

PREFIXES = ("/api/v1/sessions", "/api/sessions")


def session_id_from_path(request: web.Request) -> str:
    """The path's session id as stored; one no session could have answers 404."""
    try:
        return normalize_session_id(request.match_info["session_id"])
    except ValueError as e:
        raise not_found("session") from e


async def owned_session(request: web.Request) -> Session:
    session = await request.app[appkeys.SESSIONS].get(
        user_of(request), session_id_from_path(request)
    )
    if session is None:
        raise not_found("session")
    return session


async def create_session(request: web.Request) -> web.Response:
    body = await read_body(request, CreateSessionBody)
    try:
        session, created = await request.app[appkeys.SESSIONS].create(
            user_of(request), body.id, body.title
        )
    except SessionConflictError as e:
        raise ApiError(409, "that session id belongs to another user") from e
    return web.json_response(session.to_json(), status=201 if created else 200)


async def list_sessions(request: web.Request) -> web.Response:
    query = validate(ListQuery, dict(request.query))
    try:
        sessions, next_cursor = await request.app[appkeys.SESSIONS].page(
            user_of(request), query.limit, query.cursor
        )
    except BadCursorError as e:
        raise validation_error("cursor", str(e)) from e
    return web.json_response(
        {"sessions": [s.to_json() for s in sessions], "nextCursor": next_cursor}
    )


async def get_session(request: web.Request) -> web.Response:
    return web.json_response((await owned_session(request)).to_json())


async def rename_session(request: web.Request) -> web.Response:
    session = await owned_session(request)
    body = await read_body(request, RenameSessionBody)
    renamed = await request.app[appkeys.SESSIONS].rename(user_of(request), session.id, body.title)
    if renamed is None:
        raise not_found("session")
    return web.json_response(renamed.to_json())


async def delete_session(request: web.Request) -> web.Response:
    """Everything derived from the session goes (shared.sessions); a job still running is
    cancelled, and its open streams end with ``end`` and ``finishReason: "cancelled"``."""
    running = await request.app[appkeys.SESSIONS].delete(
        user_of(request), session_id_from_path(request)
    )
    if running is None:
        raise not_found("session")
    for job_id in running:
        await request.app[appkeys.CANCELLER].cancel(job_id)
    return web.Response(status=204)


async def list_messages(request: web.Request) -> web.Response:
    session = await owned_session(request)
    stored = await request.app[appkeys.MESSAGES].of_session(session.id)
    return web.json_response({"messages": [m.to_json() for m in stored]})


for prefix in PREFIXES:
    routes.post(prefix)(create_session)
    routes.get(prefix)(list_sessions)
    routes.get(prefix + "/{session_id}")(get_session)
    routes.patch(prefix + "/{session_id}")(rename_session)
    routes.delete(prefix + "/{session_id}")(delete_session)
    routes.get(prefix + "/{session_id}/messages")(list_messages)
