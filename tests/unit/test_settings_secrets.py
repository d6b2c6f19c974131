"""Every secret setting ``X`` can come from the file ``X_FILE`` names instead, never from both;
a Redis or RabbitMQ password kept apart from its URL is put into it, quoted."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.connection import parse_url
from yarl import URL

from shared.settings import (
    ConnectionSettings,
    GatewaySettings,
    RagSettings,
    SettingsError,
    WorkerSettings,
)

SERVERS = {"REDIS_URL": "redis://redis:6379/0", "AMQP_URL": "amqp://chatstream@rabbitmq:5672/"}


def secret_file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_secrets_are_read_from_their_files_without_the_trailing_newline(tmp_path: Path) -> None:
    environ = {
        "AUTH_API_KEYS_FILE": secret_file(tmp_path, "keys", "k1=alice,k2=bob\n"),
        "AUTH_JWT_SECRET_FILE": secret_file(tmp_path, "jwt", "jwt-secret\n"),
        "STREAM_TICKET_SECRET_FILE": secret_file(tmp_path, "tickets", "ticket-secret"),
        "LLM_API_KEY_FILE": secret_file(tmp_path, "llm", "sk-upstream\n"),
    }
    gateway = GatewaySettings.from_env(environ)
    assert gateway.api_keys == {"k1": "alice", "k2": "bob"}
    assert gateway.jwt_secret == "jwt-secret"
    assert gateway.stream_ticket_secret == "ticket-secret"
    assert RagSettings.from_env(environ).llm_api_key == "sk-upstream"


def test_the_ticket_secret_falls_back_to_the_jwt_secret_from_its_file(tmp_path: Path) -> None:
    environ = {"AUTH_JWT_SECRET_FILE": secret_file(tmp_path, "jwt", "jwt-secret\n")}
    assert GatewaySettings.from_env(environ).stream_ticket_secret == "jwt-secret"


@pytest.mark.parametrize(
    "name", ["AUTH_API_KEYS", "AUTH_JWT_SECRET", "STREAM_TICKET_SECRET", "REDIS_PASSWORD"]
)
def test_a_secret_set_both_ways_names_both_variables(tmp_path: Path, name: str) -> None:
    environ = {**SERVERS, name: "k=u", f"{name}_FILE": secret_file(tmp_path, "s", "k=u")}
    with pytest.raises(SettingsError, match=f"^set {name} or {name}_FILE, not both$"):
        GatewaySettings.from_env(environ)


def test_an_unreadable_secret_file_names_its_variable_and_path(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    with pytest.raises(SettingsError) as raised:
        WorkerSettings.from_env({"LLM_API_KEY_FILE": str(missing)})
    assert str(raised.value).startswith(f"LLM_API_KEY_FILE: cannot read {str(missing)!r}")


def test_server_passwords_from_files_go_into_the_urls_quoted(tmp_path: Path) -> None:
    # Characters that mean something in a URL: the file needs no escaping.
    password = "p@ss:w/rd#?%"
    environ = {
        **SERVERS,
        "REDIS_PASSWORD_FILE": secret_file(tmp_path, "redis", password + "\n"),
        "AMQP_PASSWORD_FILE": secret_file(tmp_path, "amqp", password),
    }
    connections = ConnectionSettings.from_env(environ)
    assert connections.redis_url is not None and connections.amqp_url is not None
    redis = parse_url(connections.redis_url)
    assert (redis["password"], redis["host"], redis["port"], redis["db"]) == (
        password,
        "redis",
        6379,
        0,
    )
    amqp = URL(connections.amqp_url)
    assert (amqp.user, amqp.password, amqp.host, amqp.port) == (
        "chatstream",
        password,
        "rabbitmq",
        5672,
    )
    assert ConnectionSettings.redis_from_env(environ).redis_url == connections.redis_url


def test_a_password_in_the_url_and_in_a_file_is_refused(tmp_path: Path) -> None:
    environ = {
        **SERVERS,
        "AMQP_URL": "amqp://chatstream:inline@rabbitmq:5672/",
        "AMQP_PASSWORD": "separate",
    }
    with pytest.raises(SettingsError, match="AMQP_URL already holds a password"):
        ConnectionSettings.from_env(environ)


def test_urls_with_their_passwords_inline_still_work() -> None:
    environ = {"REDIS_URL": "redis://:pw@redis:6379/0", "AMQP_URL": "amqp://u:pw@rabbitmq/"}
    connections = ConnectionSettings.from_env(environ)
    assert connections.redis_url == environ["REDIS_URL"]
    assert connections.amqp_url == environ["AMQP_URL"]
