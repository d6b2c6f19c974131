"""Path traversal in every path id and on the static files route: dot segments, encoded and
double-encoded slashes, backslashes, absolute paths, NUL and overlong UTF-8 each answer 404 and
serve no file from outside gateway/static and the client's modules in clients/js/src."""

from __future__ import annotations

import pytest

from tests.conftest import AUTH
from tests.security.support import (
    Client,
    World,
    assert_error,
    body_for,
    path_slot_cases,
    route_named,
    send_json,
)

# As they go on the wire, in place of one path segment.
TRAVERSALS = {
    "dots": "../../gateway/app.py",
    "dots-encoded-slash": "..%2f..%2fgateway%2fapp.py",
    "encoded-dots": "%2e%2e/%2e%2e/gateway/app.py",
    "all-encoded": "%2e%2e%2f%2e%2e%2fgateway%2fapp.py",
    "double-encoded": "%252e%252e%252fgateway%252fapp.py",
    "backslashes": "..\\..\\gateway\\app.py",
    "encoded-backslashes": "..%5c..%5cgateway%5capp.py",
    "absolute": "/etc/passwd",
    "absolute-encoded": "%2fetc%2fpasswd",
    "dot-file": ".env",
    "nul": "..%00.js",
    "overlong-utf8": "%c0%ae%c0%ae%2fgateway%2fapp.py",
    "lone-dots": "..",
    "lone-dot": ".",
}

# Text of files the traversals aim at: none may come back.
FOREIGN_CONTENT = (b"from __future__", b"root:", b"import ")


@pytest.mark.parametrize(("label", "slot"), list(path_slot_cases()))
async def test_a_traversal_in_a_path_id_is_404_and_serves_no_file(
    gateway: Client, world: World, label: str, slot: str
) -> None:
    route = route_named(label)
    body = body_for(route, world) if route.body is not None else None
    for case, segment in TRAVERSALS.items():
        reply = await send_json(
            gateway, route.method, route.target(world, **{slot: segment}), body, auth=AUTH
        )
        assert_error(reply, 404, "not_found", (label, case))
        assert not any(text in reply.body for text in FOREIGN_CONTENT), (label, case)


async def test_the_static_route_serves_its_own_files(gateway: Client) -> None:
    """The control: the traversals above fail for what they are, not because the route does."""
    for name in ("chatstream.js", "index.html"):
        reply = await send_json(gateway, "GET", f"/static/{name}", auth=None)
        assert reply.status == 200, name


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example.test/api/v1/sessions",
        "/\\evil.example.test/api/v1/sessions",
        "\\\\evil.example.test\\api",
        "http://evil.example.test/api/v1/sessions",
        "api/v1/sessions",
        "",
    ],
)
async def test_a_batch_item_names_a_path_on_this_server_only(gateway: Client, path: str) -> None:
    items = [{"method": "GET", "path": path}]
    reply = await send_json(gateway, "POST", "/api/v1/batch", {"requests": items})
    error = assert_error(reply, 422, "validation_error", path)
    assert [d["field"] for d in error["details"]] == ["requests.0.path"]
