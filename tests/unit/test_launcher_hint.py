"""The start-up hint of ``make run`` never prints a configured credential."""

from __future__ import annotations

import dataclasses

from launcher.__main__ import startup_hint, with_development_key
from shared.settings import ConnectionSettings, GatewaySettings

BASE = GatewaySettings(connections=ConnectionSettings(), api_keys={}, jwt_secret=None)


def test_embedded_mode_does_not_print_a_configured_api_key() -> None:
    configured = dataclasses.replace(BASE, api_keys={"sk-live-secret": "alice", "k2": "bob"})
    settings, development_key = with_development_key(configured)
    assert development_key is None and settings == configured
    hint = startup_hint(settings, development_key)
    assert "sk-live-secret" not in hint and "k2" not in hint
    assert "Bearer <your key>" in hint


def test_embedded_mode_with_only_a_jwt_secret_prints_no_key() -> None:
    configured = dataclasses.replace(BASE, jwt_secret="s" * 32)
    settings, development_key = with_development_key(configured)
    assert development_key is None and not settings.api_keys
    assert "Bearer <your JWT>" in startup_hint(settings, development_key)


def test_embedded_mode_prints_the_development_key_it_made() -> None:
    settings, development_key = with_development_key(BASE)
    assert development_key is not None and development_key.startswith("dev-")
    assert settings.api_keys == {development_key: "dev"}
    assert f"Bearer {development_key}" in startup_hint(settings, development_key)
