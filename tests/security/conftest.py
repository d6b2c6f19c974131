"""The hostile-input suite's gateway: embedded (no servers needed), with Alice's resources in
it, so that a hostile request can name something that exists."""

from __future__ import annotations

import pytest

from shared.settings import ConnectionSettings
from tests.conftest import GatewayFactory
from tests.security.support import Client, World, make_world


@pytest.fixture
async def gateway(namespace: str, start_gateway: GatewayFactory) -> Client:
    return await start_gateway(ConnectionSettings(namespace=namespace))


@pytest.fixture
async def world(gateway: Client) -> World:
    return await make_world(gateway, "alices-secret-7f3a")
