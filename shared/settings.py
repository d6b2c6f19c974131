"""Settings: one frozen dataclass per service, built from the environment by ``from_env()``.

Nothing else in chatstream reads ``os.environ``; settings are passed down explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.names import DEFAULT_NAMESPACE, Names

# The pipelines a job may name; "rag" joins when the agent pipeline lands.
PIPELINES = ("echo",)


class SettingsError(ValueError):
    """An environment variable holds a value chatstream cannot use."""


class _Env:
    """Typed reads from an environment mapping, each failure naming its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default)

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError as e:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from e
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value}")
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = float(raw)
        except ValueError as e:
            raise SettingsError(f"{name} must be a number, not {raw!r}") from e
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._environ.get(name, default).strip() or default
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value


def parse_api_keys(raw: str) -> dict[str, str]:
    """``key=user,key2=user2`` as a mapping of key to user id."""
    keys: dict[str, str] = {}
    for entry in raw.split(","):
        item = entry.strip()
        if not item:
            continue
        key, sep, user = item.partition("=")
        if not sep or not key.strip() or not user.strip():
            raise SettingsError(f"AUTH_API_KEYS entries are key=user, not {item!r}")
        keys[key.strip()] = user.strip()
    return keys


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where the shared servers are. Neither URL set means the embedded, in-process mode."""

    redis_url: str | None = None
    amqp_url: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    connect_timeout_s: float = 1.0

    @property
    def embedded(self) -> bool:
        return self.redis_url is None and self.amqp_url is None

    @property
    def names(self) -> Names:
        return Names(self.namespace)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        env = _Env(os.environ if environ is None else environ)
        redis_url = env.optional("REDIS_URL")
        amqp_url = env.optional("AMQP_URL")
        if (redis_url is None) != (amqp_url is None):
            raise SettingsError(
                "set both REDIS_URL and AMQP_URL for the real servers, or neither for embedded mode"
            )
        return cls(
            redis_url=redis_url,
            amqp_url=amqp_url,
            namespace=env.text("CHATSTREAM_NAMESPACE", DEFAULT_NAMESPACE),
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", 1.0, minimum=0.05),
        )


@dataclass(frozen=True, slots=True)
class EventLogSettings:
    """How long a job's events stay replayable, shared by the publisher and the relay."""

    replay_ttl_s: int = 600
    replay_max_events: int = 10_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EventLogSettings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            replay_ttl_s=env.integer("REPLAY_TTL_S", 600, minimum=1),
            replay_max_events=env.integer("REPLAY_MAX_EVENTS", 10_000, minimum=10),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    event_log: EventLogSettings = field(default_factory=EventLogSettings)
    concurrency: int = 8
    echo_token_delay_ms: int = 20
    shutdown_grace_s: float = 30.0
    worker_id: str = ""
    # Prometheus /metrics on a port of its own; 0 turns it off (several workers share a host).
    metrics_port: int = 0
    metrics_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        environ = os.environ if environ is None else environ
        env = _Env(environ)
        return cls(
            connections=ConnectionSettings.from_env(environ),
            event_log=EventLogSettings.from_env(environ),
            concurrency=env.integer("WORKER_CONCURRENCY", 8, minimum=1),
            echo_token_delay_ms=env.integer("ECHO_TOKEN_DELAY_MS", 20),
            shutdown_grace_s=env.number("WORKER_SHUTDOWN_GRACE_S", 30.0),
            worker_id=env.text("WORKER_ID", ""),
            metrics_port=env.integer("WORKER_METRICS_PORT", 0),
            metrics_host=env.text("WORKER_METRICS_HOST", "127.0.0.1"),
        )


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    event_log: EventLogSettings = field(default_factory=EventLogSettings)
    host: str = "127.0.0.1"
    port: int = 8080
    api_keys: Mapping[str, str] = field(default_factory=dict)
    jwt_secret: str | None = None
    jwt_leeway_s: int = 30
    heartbeat_interval_s: float = 15.0
    sse_retry_ms: int = 2000
    max_body_bytes: int = 64 * 1024
    client_buffer_bytes: int = 256 * 1024
    default_pipeline: str = "echo"
    # 0 serves /metrics on the API port; another port keeps it off the public one.
    metrics_port: int = 0
    # Embedded mode runs the worker inside the gateway process with these settings.
    embedded_worker: WorkerSettings = field(default_factory=WorkerSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        environ = os.environ if environ is None else environ
        env = _Env(environ)
        return cls(
            connections=ConnectionSettings.from_env(environ),
            event_log=EventLogSettings.from_env(environ),
            host=env.text("GATEWAY_HOST", "127.0.0.1"),
            port=env.integer("GATEWAY_PORT", 8080),
            api_keys=parse_api_keys(env.text("AUTH_API_KEYS", "")),
            jwt_secret=env.optional("AUTH_JWT_SECRET"),
            jwt_leeway_s=env.integer("AUTH_JWT_LEEWAY_S", 30),
            heartbeat_interval_s=env.number("HEARTBEAT_INTERVAL_S", 15.0, minimum=0.01),
            sse_retry_ms=env.integer("SSE_RETRY_MS", 2000),
            max_body_bytes=env.integer("MAX_BODY_BYTES", 64 * 1024, minimum=1),
            client_buffer_bytes=env.integer("CLIENT_BUFFER_BYTES", 256 * 1024, minimum=1024),
            default_pipeline=env.choice("DEFAULT_PIPELINE", "echo", PIPELINES),
            metrics_port=env.integer("METRICS_PORT", 0),
            embedded_worker=WorkerSettings.from_env(environ),
        )


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    # "auto" writes JSON unless stdout is a terminal.
    format: str = "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoggingSettings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            level=env.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
            format=env.choice("LOG_FORMAT", "auto", ("auto", "json", "console")),
        )
