"""Settings read from the environment: a value chatstream cannot use stops the start with an
error that names its variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.settings import (
    ConnectionSettings,
    GatewaySettings,
    LoggingSettings,
    RagSettings,
    SettingsError,
    WorkerSettings,
)


def test_an_empty_environment_gives_the_defaults() -> None:
    assert GatewaySettings.from_env({}) == GatewaySettings()
    assert WorkerSettings.from_env({}) == WorkerSettings()
    assert GatewaySettings.from_env({}).connections.embedded


def test_values_are_read_and_blank_ones_mean_the_default() -> None:
    settings = GatewaySettings.from_env(
        {
            "GATEWAY_PORT": "9001",
            "HEARTBEAT_INTERVAL_S": "0.5",
            "RATE_LIMIT_PER_MINUTE": " ",
            "AUTH_API_KEYS": "k1=alice, k2 = bob ,",
            "CORS_ORIGINS": "http://a.test, http://b.test",
            "DEFAULT_PIPELINE": "echo",
        }
    )
    assert settings.port == 9001
    assert settings.heartbeat_interval_s == 0.5
    assert settings.rate_limit_per_minute == GatewaySettings().rate_limit_per_minute
    assert settings.api_keys == {"k1": "alice", "k2": "bob"}
    assert settings.cors_origins == ("http://a.test", "http://b.test")
    assert settings.default_pipeline == "echo"


Settings = type[GatewaySettings] | type[WorkerSettings] | type[LoggingSettings]

GATEWAY_ERRORS = [
    ("GATEWAY_PORT", "eighty", "GATEWAY_PORT must be a whole number, not 'eighty'"),
    ("MAX_STREAMS_PER_USER", "2.5", "MAX_STREAMS_PER_USER must be a whole number"),
    ("MAX_STREAMS_PER_USER", "0", "MAX_STREAMS_PER_USER must be at least 1, not 0"),
    ("GATEWAY_PORT", "65536", "GATEWAY_PORT must be at most 65535, not 65536"),
    ("METRICS_PORT", "-1", "METRICS_PORT must be at least 0, not -1"),
    ("HEARTBEAT_INTERVAL_S", "soon", "HEARTBEAT_INTERVAL_S must be a number, not 'soon'"),
    ("HEARTBEAT_INTERVAL_S", "0", "HEARTBEAT_INTERVAL_S must be at least 0.01, not 0.0"),
    ("SEND_TIMEOUT_S", "nan", "SEND_TIMEOUT_S must be a finite number, not 'nan'"),
    ("DRAIN_S", "inf", "DRAIN_S must be a finite number, not 'inf'"),
    ("DEFAULT_PIPELINE", "magic", "DEFAULT_PIPELINE must be one of echo, rag, not 'magic'"),
    ("CONNECT_TIMEOUT_S", "0.01", "CONNECT_TIMEOUT_S must be at least 0.05, not 0.01"),
    ("REPLAY_MAX_EVENTS", "10", "REPLAY_MAX_EVENTS must be at least 256, not 10"),
    ("CHATSTREAM_NAMESPACE", " ", "CHATSTREAM_NAMESPACE must not be empty"),
]
WORKER_ERRORS = [
    ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY must be at least 1, not 0"),
    ("WORKER_METRICS_PORT", "100000", "WORKER_METRICS_PORT must be at most 65535"),
    ("DISCONNECT_GRACE_S", "-1", "DISCONNECT_GRACE_S must be at least 0.05, not -1.0"),
    ("LLM_ATTEMPTS", "none", "LLM_ATTEMPTS must be a whole number, not 'none'"),
    ("GENERATOR", "gpt", "GENERATOR must be one of extractive, openai, not 'gpt'"),
    ("LLM_MAX_TOKENS", "0", "LLM_MAX_TOKENS must be at least 1, not 0"),
    ("LLM_TEMPERATURE", "warm", "LLM_TEMPERATURE must be a number, not 'warm'"),
    ("LLM_TEMPERATURE", "2.5", "LLM_TEMPERATURE must be at most 2.0, not 2.5"),
]
LOGGING_ERRORS = [("LOG_LEVEL", "LOUD", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR")]


@pytest.mark.parametrize(
    ("settings", "variable", "value", "message"),
    [(GatewaySettings, *error) for error in GATEWAY_ERRORS]
    + [(WorkerSettings, *error) for error in WORKER_ERRORS]
    + [(LoggingSettings, *error) for error in LOGGING_ERRORS],
)
def test_a_bad_value_names_its_variable(
    settings: Settings, variable: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(message)):
        settings.from_env({variable: value})


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("k1=alice,secret-without-user", "AUTH_API_KEYS entries are key=user; entry 2 is not"),
        ("=alice", "AUTH_API_KEYS entries are key=user; entry 1 is not"),
        ("secret-key=", "AUTH_API_KEYS entries are key=user; entry 1 is not"),
        (
            "secret-key=alice,other=carol,secret-key=bob",
            "AUTH_API_KEYS entry 3 repeats the key of user 'alice'",
        ),
    ],
)
def test_a_bad_key_list_names_the_entry_but_never_shows_a_key(keys: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        GatewaySettings.from_env({"AUTH_API_KEYS": keys})
    assert str(raised.value) == message
    assert "secret" not in str(raised.value)


@pytest.mark.parametrize("present", ["REDIS_URL", "AMQP_URL"])
def test_one_server_url_without_the_other_names_both(present: str) -> None:
    with pytest.raises(
        SettingsError, match=r"REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES\) and AMQP_URL"
    ):
        ConnectionSettings.from_env({present: "redis://127.0.0.1:6379/0"})


SENTINELS = {"REDIS_SENTINELS": "10.0.0.1:26379, [::1]:26380", "REDIS_SENTINEL_SERVICE": "main"}


def test_cluster_nodes_choose_a_cluster_with_its_names_tagged() -> None:
    connections = ConnectionSettings.from_env(
        {"REDIS_CLUSTER_NODES": "10.0.0.1:7000, [::1]:7001", "AMQP_URL": "amqp://h/"}
    )
    assert connections.has_redis and connections.redis_url is None
    assert connections.cluster_nodes == (("10.0.0.1", 7000), ("::1", 7001))
    assert connections.names.hash_tags
    assert not ConnectionSettings.from_env(
        {"REDIS_URL": "redis://h/0", "AMQP_URL": "amqp://h/"}
    ).names.hash_tags


def test_sentinels_and_their_service_choose_sentinel() -> None:
    connections = ConnectionSettings.from_env(
        {**SENTINELS, "AMQP_URL": "amqp://h/", "REDIS_PASSWORD": "p"}
    )
    assert connections.redis_url is None and connections.has_redis
    assert connections.sentinel is not None
    assert connections.sentinel.sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    assert connections.sentinel.service == "main"
    assert connections.redis_password == "p"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {**SENTINELS, "REDIS_URL": "redis://h/0"},
            "set one of REDIS_URL (one Redis), REDIS_SENTINELS (Sentinel) and "
            "REDIS_CLUSTER_NODES (Cluster), not REDIS_URL and REDIS_SENTINELS",
        ),
        (
            {"REDIS_CLUSTER_NODES": "h:7000", "REDIS_URL": "redis://h/0"},
            "set one of REDIS_URL (one Redis), REDIS_SENTINELS (Sentinel) and "
            "REDIS_CLUSTER_NODES (Cluster), not REDIS_URL and REDIS_CLUSTER_NODES",
        ),
        (
            {**SENTINELS, "REDIS_CLUSTER_NODES": "h:7000"},
            "set one of REDIS_URL (one Redis), REDIS_SENTINELS (Sentinel) and "
            "REDIS_CLUSTER_NODES (Cluster), not REDIS_SENTINELS and REDIS_CLUSTER_NODES",
        ),
        (
            {"REDIS_CLUSTER_NODES": "h:7000,h"},
            "REDIS_CLUSTER_NODES takes host:port entries, not 'h'",
        ),
        (
            {"REDIS_SENTINELS": "h:26379"},
            "REDIS_SENTINELS needs REDIS_SENTINEL_SERVICE, the name the sentinels monitor the "
            "primary under",
        ),
        (
            {"REDIS_SENTINEL_SERVICE": "main"},
            "REDIS_SENTINEL_SERVICE is set but REDIS_SENTINELS is not",
        ),
        (
            {**SENTINELS, "REDIS_SENTINELS": "h:26379,h"},
            "REDIS_SENTINELS takes host:port entries, not 'h'",
        ),
        (
            {**SENTINELS, "REDIS_SENTINELS": "h:99999"},
            "REDIS_SENTINELS takes host:port entries, not 'h:99999'",
        ),
    ],
)
def test_a_wrong_redis_topology_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        ConnectionSettings.from_env({**environ, "AMQP_URL": "amqp://h/"})
    assert str(raised.value) == message


def test_a_chunk_overlap_as_long_as_the_chunk_names_both_variables() -> None:
    with pytest.raises(
        SettingsError, match=r"^RAG_CHUNK_OVERLAP_CHARS must be less than RAG_CHUNK_CHARS$"
    ):
        RagSettings.from_env({"RAG_CHUNK_CHARS": "200", "RAG_CHUNK_OVERLAP_CHARS": "200"})


OPENAI = {"GENERATOR": "openai", "LLM_BASE_URL": "http://127.0.0.1:11434/v1", "LLM_MODEL": "m"}


@pytest.mark.parametrize(
    ("unset", "message"),
    [
        ("LLM_BASE_URL", "LLM_BASE_URL must be set when GENERATOR=openai: "),
        ("LLM_MODEL", "LLM_MODEL must be set when GENERATOR=openai: "),
    ],
)
def test_the_openai_generator_without_its_model_server_is_a_startup_error(
    unset: str, message: str
) -> None:
    environ = {name: value for name, value in OPENAI.items() if name != unset}
    with pytest.raises(SettingsError, match="^" + re.escape(message)):
        WorkerSettings.from_env(environ)


def test_a_model_server_url_without_its_scheme_is_a_startup_error() -> None:
    with pytest.raises(
        SettingsError,
        match=r"^LLM_BASE_URL must be an http:// or https:// URL, not 'localhost:11434/v1'$",
    ):
        WorkerSettings.from_env(OPENAI | {"LLM_BASE_URL": "localhost:11434/v1"})


def test_the_openai_generator_settings_are_read() -> None:
    rag = WorkerSettings.from_env(
        OPENAI | {"LLM_MAX_TOKENS": "512", "LLM_TEMPERATURE": "0.3", "LLM_API_KEY": "sk-x"}
    ).rag
    assert (rag.generator, rag.llm_base_url, rag.llm_model) == (
        "openai",
        OPENAI["LLM_BASE_URL"],
        "m",
    )
    assert (rag.llm_max_tokens, rag.llm_temperature, rag.llm_api_key) == (512, 0.3, "sk-x")
    assert "sk-x" not in repr(rag)
    # Unset, neither is sent to the model server.
    defaults = WorkerSettings.from_env(OPENAI).rag
    assert (defaults.llm_max_tokens, defaults.llm_temperature) == (None, None)


def test_the_api_key_comes_from_the_file_named_by_llm_api_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "llm_api_key"
    key_file.write_text("sk-from-a-file\n")
    rag = WorkerSettings.from_env(OPENAI | {"LLM_API_KEY_FILE": str(key_file)}).rag
    assert rag.llm_api_key == "sk-from-a-file"


def test_the_api_key_and_its_file_together_are_an_error_naming_both(tmp_path: Path) -> None:
    key_file = tmp_path / "llm_api_key"
    key_file.write_text("sk-from-a-file")
    environ = OPENAI | {"LLM_API_KEY": "sk-x", "LLM_API_KEY_FILE": str(key_file)}
    with pytest.raises(SettingsError, match=r"^set LLM_API_KEY or LLM_API_KEY_FILE, not both$"):
        WorkerSettings.from_env(environ)


def test_a_missing_key_file_is_an_error_naming_its_variable(tmp_path: Path) -> None:
    key_file = tmp_path / "llm_api_key"
    with pytest.raises(SettingsError, match=r"^LLM_API_KEY_FILE: cannot read "):
        WorkerSettings.from_env(OPENAI | {"LLM_API_KEY_FILE": str(key_file)})


def test_an_empty_key_file_means_no_key(tmp_path: Path) -> None:
    # Compose mounts every secret's file; an optional secret left unset is an empty one.
    key_file = tmp_path / "llm_api_key"
    key_file.write_text(" \n")
    environ = OPENAI | {"LLM_API_KEY_FILE": str(key_file)}
    environ.pop("LLM_API_KEY", None)
    assert WorkerSettings.from_env(environ).rag.llm_api_key is None


def test_the_gateway_neither_reads_nor_checks_the_model_server_settings(tmp_path: Path) -> None:
    # It runs no generator, and the key file may be mounted in the workers alone.
    environ = {"GENERATOR": "openai", "LLM_API_KEY_FILE": str(tmp_path / "absent")}
    assert GatewaySettings.from_env(environ).rag == RagSettings()
