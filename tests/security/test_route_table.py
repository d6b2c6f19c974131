"""The suite's table of routes is the gateway's: a new route joins the hostile sweeps, or this
fails."""

from __future__ import annotations

from gateway.openapi import SKIPPED_METHODS
from tests.security.support import ROUTES, Client


async def test_the_route_table_holds_every_route_of_the_gateway(gateway: Client) -> None:
    registered = {
        (route.method, route.resource.canonical)
        for route in gateway.app.router.routes()
        if route.method not in SKIPPED_METHODS and route.resource is not None
    }
    assert {(route.method, route.canonical) for route in ROUTES} == registered
    assert len({route.label for route in ROUTES}) == len(ROUTES)
