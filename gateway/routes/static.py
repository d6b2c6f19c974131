"""The chat page and its ES modules, served as plain files: no build step, no templating.

The page's own files live in gateway/static. The client modules it imports are served from the
npm package's source, clients/js/src, so the page runs the same code a front end installs and
there is one copy of it.

These paths are public (the middleware authenticates only ``/api/`` and ``/v1/``); the page asks
the user for an API key and sends it as a bearer header, never in a URL."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

routes = web.RouteTableDef()

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "gateway" / "static"
CLIENT_DIR = ROOT / "clients" / "js" / "src"
# Only the browser's modules: the React binding imports "react" by name, which a page without a
# bundler cannot resolve.
CLIENT_FILES = frozenset({"chatstream.js", "sse.js", "chatstream.d.ts"})

# Set here rather than guessed: ``mimetypes`` calls a .ts file a video, and an ES module must be
# served as JavaScript or the browser refuses to run it.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}

# One file name, no dot first: the route can only reach files directly inside STATIC_DIR, or the
# named CLIENT_FILES inside CLIENT_DIR.
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")

# The page talks only to its own origin and loads nothing from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate on every load (ETag/Last-Modified make that a 304), so a deploy shows at once.
    "Cache-Control": "no-cache",
}


def _file_response(name: str) -> web.FileResponse:
    path = (CLIENT_DIR if name in CLIENT_FILES else STATIC_DIR) / name
    content_type = CONTENT_TYPES.get(path.suffix)
    if not _FILE_NAME.fullmatch(name) or content_type is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Content-Type": content_type})


@routes.get("/")
async def index(request: web.Request) -> web.FileResponse:
    """The chat page."""
    return _file_response("index.html")


@routes.get("/static/{name}")
async def static_file(request: web.Request) -> web.FileResponse:
    return _file_response(request.match_info["name"])
