"""Settings: one frozen dataclass per service, built from the environment by ``from_env()``.

Nothing else in chatstream reads ``os.environ``; settings are passed down explicitly.
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import overload
from urllib.parse import quote, urlsplit, urlunsplit

from shared.amqp_nodes import AmqpNodesError, join_nodes, node_urls
from shared.names import DEFAULT_NAMESPACE, Names

# The highest TCP port.
MAX_PORT = 65_535

# The pipelines a job may name.
PIPELINES = ("echo", "rag")
GENERATORS = ("extractive", "openai")


# ``AUTH_JWT_SECRET_FILE=/run/secrets/jwt`` reads AUTH_JWT_SECRET from that file.
SECRET_FILE_SUFFIX = "_FILE"


class SettingsError(ValueError):
    """An environment variable holds a value chatstream cannot use."""


@contextmanager
def exit_on_settings_error() -> Iterator[None]:
    """A process's settings read inside this end it with the error's message, which names the
    variable, rather than a traceback: a misconfiguration is the operator's to fix."""
    try:
        yield
    except SettingsError as e:
        raise SystemExit(f"chatstream: configuration error: {e}") from None


class _Env:
    """Typed reads from an environment mapping, each failure naming its variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: str, default: str) -> str:
        return self._environ.get(name, default)

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def secret(self, name: str) -> str | None:
        """``NAME``'s value, or the contents of the file ``NAME_FILE`` names (compose and
        systemd credentials mount secrets as files, which keeps them out of the environment
        every child process inherits and out of ``docker inspect``). Setting both is an error:
        which one wins would be a guess."""
        file_name = f"{name}{SECRET_FILE_SUFFIX}"
        value, path = self.optional(name), self.optional(file_name)
        if value is not None and path is not None:
            raise SettingsError(f"set {name} or {file_name}, not both")
        if path is None:
            return value
        try:
            text = _read(file_name, path).decode("utf-8")
        except UnicodeDecodeError as e:
            raise SettingsError(f"{file_name}: {path!r} is not UTF-8 text") from e
        # Editors and `echo` end the file with a newline that is no part of the secret.
        return text.strip() or None

    def readable_file(self, name: str) -> str | None:
        """The path ``name`` holds, once it is known to be a file this process can read."""
        path = self.optional(name)
        if path is not None:
            _read(name, path)
        return path

    def flag(self, name: str) -> bool | None:
        """``true`` or ``false``; None when unset, for a default that depends on others."""
        raw = self.optional(name)
        if raw is None:
            return None
        if raw.lower() not in ("true", "false"):
            raise SettingsError(f"{name} must be true or false, not {raw!r}")
        return raw.lower() == "true"

    def integer(
        self, name: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = int(raw)
        except ValueError as e:
            raise SettingsError(f"{name} must be a whole number, not {raw!r}") from e
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be at most {maximum}, not {value}")
        return value

    def addresses(self, name: str) -> tuple[tuple[str, int], ...]:
        """``host:port,host:port``; empty when unset."""
        raw = self.optional(name)
        if raw is None:
            return ()
        addresses = []
        for entry in raw.split(","):
            host, _, port = entry.strip().rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
                raise SettingsError(f"{name} takes host:port entries, not {entry.strip()!r}")
            addresses.append((host.strip("[]"), int(port)))
        return tuple(addresses)

    def port(self, name: str, default: int) -> int:
        """A TCP port number, 0 to 65535 (what 0 means is up to the setting)."""
        return self.integer(name, default, maximum=MAX_PORT)

    def number(
        self, name: str, default: float, *, minimum: float = 0.0, maximum: float | None = None
    ) -> float:
        raw = self._environ.get(name)
        if raw is None or not raw.strip():
            return default
        try:
            value = float(raw)
        except ValueError as e:
            raise SettingsError(f"{name} must be a number, not {raw!r}") from e
        # float() reads "nan" and "inf", which no duration or bound here can be.
        if not math.isfinite(value):
            raise SettingsError(f"{name} must be a finite number, not {raw!r}")
        if value < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name} must be at most {maximum}, not {value}")
        return value

    def optional_number(self, name: str, *, minimum: float, maximum: float) -> float | None:
        """A number, or None when the variable is unset or blank."""
        if self.optional(name) is None:
            return None
        return self.number(name, minimum, minimum=minimum, maximum=maximum)

    def names(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A comma-separated list."""
        raw = self._environ.get(name)
        if raw is None:
            return default
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._environ.get(name, default).strip() or default
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return value


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SettingsError(f"{name}: cannot read {path!r}: {e.strerror}") from e


@overload
def with_password(url: str, password: str | None, *, url_name: str) -> str: ...


@overload
def with_password(url: None, password: str | None, *, url_name: str) -> None: ...


def with_password(url: str | None, password: str | None, *, url_name: str) -> str | None:
    """``url`` with ``password`` put in its user info, quoted, so that a password kept in a
    file of its own needs no escaping and the URL setting holds no secret."""
    if url is None or password is None:
        return url
    parts = urlsplit(url)
    if parts.password is not None:
        raise SettingsError(f"{url_name} already holds a password: set it in one place")
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def amqp_url_from_env(env: _Env) -> str | None:
    """``AMQP_URL``'s nodes (shared/amqp_nodes.py), checked, each with ``AMQP_PASSWORD`` put
    in; None when unset."""
    raw = env.optional("AMQP_URL")
    if raw is None:
        return None
    try:
        nodes = node_urls(raw)
    except AmqpNodesError as e:
        raise SettingsError(f"AMQP_URL: {e}") from e
    password = env.secret("AMQP_PASSWORD")
    return join_nodes(tuple(with_password(node, password, url_name="AMQP_URL") for node in nodes))


def parse_api_keys(raw: str) -> dict[str, str]:
    """``key=user,key2=user2`` as a mapping of key to user id. An error names the entry by its
    position, never by its text: the text holds a secret."""
    keys: dict[str, str] = {}
    for position, entry in enumerate(raw.split(","), start=1):
        item = entry.strip()
        if not item:
            continue
        key, sep, user = item.partition("=")
        key, user = key.strip(), user.strip()
        if not sep or not key or not user:
            raise SettingsError(f"AUTH_API_KEYS entries are key=user; entry {position} is not")
        if key in keys:
            raise SettingsError(
                f"AUTH_API_KEYS entry {position} repeats the key of user {keys[key]!r}"
            )
        keys[key] = user
    return keys


@dataclass(frozen=True, slots=True)
class SentinelSettings:
    """A Redis primary found through Sentinel: the sentinels to ask, and the name they monitor
    it under."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    # The sentinels' own password, when they have one (Redis's is REDIS_PASSWORD).
    password: str | None = None


# The files TLS to Redis takes, all optional: a CA to verify the servers by, a client
# certificate and its key for servers that ask for one.
REDIS_TLS_FILES = ("REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE")


@dataclass(frozen=True, slots=True)
class RedisTlsSettings:
    """TLS to every Redis server chatstream reaches: the one a ``rediss://`` ``REDIS_URL``
    names, or with ``REDIS_TLS=true`` the sentinels and the servers they name alike (a
    sentinel that reaches TLS servers speaks TLS to the other sentinels too, so it listens on
    a TLS port already). Certificates are always verified, host name included: a server's
    certificate must name the address chatstream connects to, for Sentinel the address the
    sentinels announce."""

    # The CAs that sign the servers' certificates (PEM); None trusts the system's.
    ca_file: str | None = None
    # A client certificate and its key (PEM, unencrypted), for servers that ask for one.
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_env(cls, env: _Env, *, redis_url: str | None, nodes: bool) -> RedisTlsSettings | None:
        """None for plain TCP. One Redis's URL scheme says whether it is TLS; ``REDIS_TLS``,
        the switch for a list of ``nodes`` (sentinels or cluster nodes), may repeat that but
        not contradict it."""
        wanted = env.flag("REDIS_TLS")
        tls = bool(wanted)
        if redis_url is not None:
            tls = redis_url.startswith("rediss://")
            if wanted is not None and wanted != tls:
                raise SettingsError(
                    f"REDIS_TLS={str(wanted).lower()} contradicts REDIS_URL: one Redis is "
                    "reached over TLS with a rediss:// URL, and only then"
                )
        elif wanted and not nodes:
            raise SettingsError(
                "REDIS_TLS=true, but none of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES "
                "is set"
            )
        given = [name for name in REDIS_TLS_FILES if env.optional(name) is not None]
        if not tls:
            if given:
                raise SettingsError(
                    f"{given[0]} is set but TLS to Redis is off: it is on with a rediss:// "
                    "REDIS_URL, or with REDIS_TLS=true beside REDIS_SENTINELS or "
                    "REDIS_CLUSTER_NODES"
                )
            return None
        ca = env.readable_file("REDIS_TLS_CA_FILE")
        cert = env.readable_file("REDIS_TLS_CERT_FILE")
        key = env.readable_file("REDIS_TLS_KEY_FILE")
        if (cert is None) != (key is None):
            raise SettingsError(
                "set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE together: a client "
                "certificate goes with its key"
            )
        settings = cls(ca_file=ca, cert_file=cert, key_file=key)
        settings.check_files()
        return settings

    def check_files(self) -> None:
        """Load the files as a connection will, so that a file of the wrong kind stops the
        start, naming its variable, instead of failing every connection."""
        context = ssl.create_default_context()
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except ssl.SSLError as e:
                raise SettingsError(
                    f"REDIS_TLS_CA_FILE: {self.ca_file!r} holds no PEM certificate ({_why(e)})"
                ) from e
        if self.cert_file is not None:
            try:
                # A key that asks for a password fails here rather than prompting on a
                # terminal; a connection would have no password to give it.
                context.load_cert_chain(self.cert_file, self.key_file, password=_no_password)
            except ssl.SSLError as e:
                raise SettingsError(
                    "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE must be a PEM certificate and "
                    f"its unencrypted key ({_why(e)})"
                ) from e


def _no_password() -> bytes:
    return b""


def _why(error: ssl.SSLError) -> str:
    # OpenSSL's reason code; a key it could not decrypt has none, only its message.
    return str(error.reason or error.strerror)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where the shared servers are. No Redis and no AMQP set means the embedded, in-process
    mode. Redis is one server (``redis_url``), a primary found through ``sentinel``, or a
    Redis Cluster reached through any of ``cluster_nodes``."""

    redis_url: str | None = None
    # One RabbitMQ node's URL, or a cluster's nodes' URLs, comma-separated (shared/amqp_nodes.py).
    amqp_url: str | None = None
    sentinel: SentinelSettings | None = None
    # Some nodes of a Redis Cluster (any that answer tell the client of the rest).
    cluster_nodes: tuple[tuple[str, int], ...] = ()
    # For every Redis server and sentinel; a password in REDIS_URL wins over it.
    redis_password: str | None = None
    # None: plain TCP to Redis.
    redis_tls: RedisTlsSettings | None = None
    namespace: str = DEFAULT_NAMESPACE
    # How long a connection attempt may take: a server that is down answers 503 this fast.
    connect_timeout_s: float = 1.0
    # How long a connected server may take to confirm a job's publish or a subscription. Under
    # a burst of new streams a busy gateway or broker confirms late, not never, so this bound
    # is longer: the request waits instead of being refused.
    confirm_timeout_s: float = 5.0
    redis_max_connections: int = 512

    @property
    def has_redis(self) -> bool:
        return self.redis_url is not None or self.sentinel is not None or bool(self.cluster_nodes)

    @property
    def embedded(self) -> bool:
        return not self.has_redis and self.amqp_url is None

    @property
    def names(self) -> Names:
        return Names(self.namespace, hash_tags=bool(self.cluster_nodes))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        env = _Env(os.environ if environ is None else environ)
        redis = cls.redis_from_env(environ)
        if redis.has_redis != (env.optional("AMQP_URL") is not None):
            raise SettingsError(
                "set both Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES) and AMQP_URL "
                "for the real "
                "servers, or neither for embedded mode"
            )
        return replace(
            redis,
            amqp_url=amqp_url_from_env(env),
            connect_timeout_s=env.number("CONNECT_TIMEOUT_S", 1.0, minimum=0.05),
            confirm_timeout_s=env.number("CONFIRM_TIMEOUT_S", 5.0, minimum=0.05),
            redis_max_connections=env.integer("REDIS_MAX_CONNECTIONS", 512, minimum=4),
        )

    @classmethod
    def redis_from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """Redis and the namespace alone, for a tool that needs no broker. Redis is
        ``REDIS_URL``, ``REDIS_SENTINELS`` with ``REDIS_SENTINEL_SERVICE``, or
        ``REDIS_CLUSTER_NODES``; a mixed or half-given choice is an error naming the variable."""
        env = _Env(os.environ if environ is None else environ)
        redis_password = env.secret("REDIS_PASSWORD")
        redis_url = with_password(env.optional("REDIS_URL"), redis_password, url_name="REDIS_URL")
        sentinels = env.addresses("REDIS_SENTINELS")
        service = env.optional("REDIS_SENTINEL_SERVICE")
        cluster_nodes = env.addresses("REDIS_CLUSTER_NODES")
        chosen = [
            name
            for name, given in (
                ("REDIS_URL", redis_url is not None),
                ("REDIS_SENTINELS", bool(sentinels)),
                ("REDIS_CLUSTER_NODES", bool(cluster_nodes)),
            )
            if given
        ]
        if len(chosen) > 1:
            raise SettingsError(
                f"set one of REDIS_URL (one Redis), REDIS_SENTINELS (Sentinel) and "
                f"REDIS_CLUSTER_NODES (Cluster), not {' and '.join(chosen)}"
            )
        if sentinels and service is None:
            raise SettingsError(
                "REDIS_SENTINELS needs REDIS_SENTINEL_SERVICE, the name the sentinels monitor "
                "the primary under"
            )
        if service is not None and not sentinels:
            raise SettingsError("REDIS_SENTINEL_SERVICE is set but REDIS_SENTINELS is not")
        redis_tls = RedisTlsSettings.from_env(
            env, redis_url=redis_url, nodes=bool(sentinels or cluster_nodes)
        )
        namespace = env.text("CHATSTREAM_NAMESPACE", DEFAULT_NAMESPACE).strip()
        if not namespace:
            raise SettingsError(
                "CHATSTREAM_NAMESPACE must not be empty: every key and queue name starts with it"
            )
        return cls(
            redis_url=redis_url,
            sentinel=(
                SentinelSettings(sentinels, service, env.secret("REDIS_SENTINEL_PASSWORD"))
                if service is not None
                else None
            ),
            cluster_nodes=cluster_nodes,
            redis_password=redis_password,
            redis_tls=redis_tls,
            namespace=namespace,
        )


@dataclass(frozen=True, slots=True)
class EventLogSettings:
    """How long a job's events stay replayable, shared by the publisher and the relay."""

    replay_ttl_s: int = 600
    replay_max_events: int = 10_000
    # How long a worker holds an event and retries while Redis is unreachable.
    publish_retry_s: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EventLogSettings:
        env = _Env(os.environ if environ is None else environ)
        return cls(
            replay_ttl_s=env.integer("REPLAY_TTL_S", 600, minimum=1),
            # At least one batch of a worker's events (worker/event_log.py MAX_QUEUED_EVENTS):
            # a batch sent again is recognised by finding all of it still in the log.
            replay_max_events=env.integer("REPLAY_MAX_EVENTS", 10_000, minimum=256),
            publish_retry_s=env.number("EVENT_PUBLISH_RETRY_S", 30.0),
        )


@dataclass(frozen=True, slots=True)
class RagSettings:
    """The agent/RAG pipeline and its knowledge collections (see docs/rag.md)."""

    generator: str = "extractive"
    # The model server of the openai generator (docs/rag-generators.md); GENERATOR=openai needs
    # the URL and the model's name as that server knows it.
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    # Sent only when set; unset leaves them to the model server's defaults.
    llm_max_tokens: int | None = None
    llm_temperature: float | None = None
    llm_connect_timeout_s: float = 5.0
    # Both the wait for the first token and the longest silence between two chunks.
    llm_read_timeout_s: float = 60.0
    # Attempts of the upstream request before its first token; never once tokens flowed.
    llm_attempts: int = 2
    public_projects: tuple[str, ...] = ("docs",)
    # The collection a job that names none is answered from.
    default_project: str = "docs"
    chunk_chars: int = 800
    chunk_overlap_chars: int = 160
    top_k: int = 4
    context_token_budget: int = 1500
    history_messages: int = 20
    project_memory_items: int = 50
    # A directory ingested into the default project at start-up (embedded mode only).
    docs_dir: str | None = None

    def __post_init__(self) -> None:
        # A generator that cannot run is a start-up error, never a quiet fallback to another.
        if self.generator != "openai":
            return
        if self.llm_base_url is None:
            raise SettingsError(
                "LLM_BASE_URL must be set when GENERATOR=openai: the model server's "
                "OpenAI-compatible API, for example http://127.0.0.1:11434/v1"
            )
        if not self.llm_base_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"LLM_BASE_URL must be an http:// or https:// URL, not {self.llm_base_url!r}"
            )
        if self.llm_model is None:
            raise SettingsError(
                "LLM_MODEL must be set when GENERATOR=openai: the model's name as the model "
                "server knows it, for example llama3.2:1b on Ollama"
            )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, generation: bool = True
    ) -> RagSettings:
        """With ``generation=False`` (the gateway, ``chatstream ingest``: they run no
        generator) the generator and model server settings are neither read nor checked: the
        model server's key file may be mounted in the workers alone."""
        env = _Env(os.environ if environ is None else environ)
        chunk_chars = env.integer("RAG_CHUNK_CHARS", 800, minimum=100)
        overlap = env.integer("RAG_CHUNK_OVERLAP_CHARS", 160)
        if overlap >= chunk_chars:
            raise SettingsError("RAG_CHUNK_OVERLAP_CHARS must be less than RAG_CHUNK_CHARS")
        knowledge = cls(
            public_projects=env.names("PUBLIC_PROJECTS", ("docs",)),
            default_project=env.text("RAG_DEFAULT_PROJECT", "docs"),
            chunk_chars=chunk_chars,
            chunk_overlap_chars=overlap,
            top_k=env.integer("RAG_TOP_K", 4, minimum=1),
            context_token_budget=env.integer("RAG_CONTEXT_TOKEN_BUDGET", 1500, minimum=1),
            history_messages=env.integer("RAG_HISTORY_MESSAGES", 20, minimum=1),
            project_memory_items=env.integer("RAG_PROJECT_MEMORY_ITEMS", 50, minimum=1),
            docs_dir=env.optional("DOCS_DIR"),
        )
        if not generation:
            return knowledge
        return replace(
            knowledge,
            generator=env.choice("GENERATOR", "extractive", GENERATORS),
            llm_base_url=env.optional("LLM_BASE_URL"),
            llm_model=env.optional("LLM_MODEL"),
            llm_api_key=env.secret("LLM_API_KEY"),
            # Blank means not sent; 0 would ask for an empty answer, so the least is 1.
            llm_max_tokens=env.integer("LLM_MAX_TOKENS", 0, minimum=1) or None,
            # OpenAI's range, which the other servers accept too.
            llm_temperature=env.optional_number("LLM_TEMPERATURE", minimum=0.0, maximum=2.0),
            llm_connect_timeout_s=env.number("LLM_CONNECT_TIMEOUT_S", 5.0, minimum=0.01),
            llm_read_timeout_s=env.number("LLM_READ_TIMEOUT_S", 60.0, minimum=0.01),
            llm_attempts=env.integer("LLM_ATTEMPTS", 2, minimum=1),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    connections: ConnectionSettings = field(default_factory=ConnectionSettings)
    event_log: EventLogSettings = field(default_factory=EventLogSettings)
    concurrency: int = 8
    echo_token_delay_ms: int = 20
    shutdown_grace_s: float = 30.0
    disconnect_grace_s: float = 30.0
    worker_id: str = ""
    rag: RagSettings = field(default_factory=RagSettings)
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
            disconnect_grace_s=env.number("DISCONNECT_GRACE_S", 30.0, minimum=0.05),
            worker_id=env.text("WORKER_ID", ""),
            rag=RagSettings.from_env(environ),
            metrics_port=env.port("WORKER_METRICS_PORT", 0),
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
    # Checked when set: a bearer JWT's ``iss`` and ``aud`` must name them.
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    # The longest a bearer JWT may live: ``exp - iat``, or ``exp - now`` without ``iat``.
    jwt_max_lifetime_s: int = 86_400
    heartbeat_interval_s: float = 15.0
    sse_retry_ms: int = 2000
    max_body_bytes: int = 64 * 1024
    slow_client_buffer_bytes: int = 256 * 1024
    # A write to a client that takes longer than this means the client stopped reading.
    send_timeout_s: float = 10.0
    # A running job with no event for this long is ended with an error for its clients.
    job_stall_s: float = 120.0
    # On SIGTERM, open streams are closed at random moments over this many seconds.
    drain_s: float = 10.0
    default_pipeline: str = "rag"
    rate_limit_per_minute: int = 600
    # Jobs one user may have in flight at once, through any route: open streams (new turns,
    # resumes, re-attaches) and non-streaming completions waiting for their answer. The name
    # predates the completions counting; operators set it, so it stays.
    max_streams_per_user: int = 5
    # How long a non-streaming completion waits for its job before answering 504.
    completion_timeout_s: float = 300.0
    cors_origins: tuple[str, ...] = ()
    stream_ticket_ttl_s: int = 600
    # Signs stream tickets; every gateway behind one balancer must share it.
    stream_ticket_secret: str = ""
    rag: RagSettings = field(default_factory=RagSettings)
    # 0 serves /metrics on the API port; another port keeps it off the public one.
    metrics_port: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        environ = os.environ if environ is None else environ
        env = _Env(environ)
        return cls(
            connections=ConnectionSettings.from_env(environ),
            event_log=EventLogSettings.from_env(environ),
            host=env.text("GATEWAY_HOST", "127.0.0.1"),
            port=env.port("GATEWAY_PORT", 8080),
            api_keys=parse_api_keys(env.secret("AUTH_API_KEYS") or ""),
            jwt_secret=env.secret("AUTH_JWT_SECRET"),
            jwt_leeway_s=env.integer("AUTH_JWT_LEEWAY_S", 30),
            jwt_issuer=env.optional("AUTH_JWT_ISSUER"),
            jwt_audience=env.optional("AUTH_JWT_AUDIENCE"),
            jwt_max_lifetime_s=env.integer("AUTH_JWT_MAX_LIFETIME_S", 86_400, minimum=1),
            heartbeat_interval_s=env.number("HEARTBEAT_INTERVAL_S", 15.0, minimum=0.01),
            sse_retry_ms=env.integer("SSE_RETRY_MS", 2000),
            max_body_bytes=env.integer("MAX_BODY_BYTES", 64 * 1024, minimum=1),
            send_timeout_s=env.number("SEND_TIMEOUT_S", 10.0, minimum=0.05),
            job_stall_s=env.number("JOB_STALL_S", 120.0, minimum=0.1),
            drain_s=env.number("DRAIN_S", 10.0),
            slow_client_buffer_bytes=env.integer(
                "SLOW_CLIENT_BUFFER_BYTES", 256 * 1024, minimum=64 * 1024
            ),
            default_pipeline=env.choice("DEFAULT_PIPELINE", "rag", PIPELINES),
            rate_limit_per_minute=env.integer("RATE_LIMIT_PER_MINUTE", 600, minimum=1),
            max_streams_per_user=env.integer("MAX_STREAMS_PER_USER", 5, minimum=1),
            completion_timeout_s=env.number("COMPLETION_TIMEOUT_S", 300.0, minimum=0.1),
            cors_origins=env.names("CORS_ORIGINS", ()),
            stream_ticket_ttl_s=env.integer("STREAM_TICKET_TTL_S", 600, minimum=1),
            stream_ticket_secret=env.secret("STREAM_TICKET_SECRET")
            or env.secret("AUTH_JWT_SECRET")
            or "",
            rag=RagSettings.from_env(environ, generation=False),
            metrics_port=env.port("METRICS_PORT", 0),
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


# The OpenTelemetry exporters chatstream can send traces through (OTEL_TRACES_EXPORTER).
TRACE_EXPORTERS = ("otlp", "none")


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """Whether spans are made and exported (shared/tracing.py). Off unless the standard
    OpenTelemetry variables ask for it: an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=otlp``; off again with
    ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. The SDK reads the rest of
    its variables itself (the endpoint, ``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``,
    ``OTEL_RESOURCE_ATTRIBUTES``)."""

    enabled: bool = False
    # OTEL_SERVICE_NAME; without it each process names itself (chatstream-gateway, ...).
    service_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TracingSettings:
        env = _Env(os.environ if environ is None else environ)
        exporter = env.optional("OTEL_TRACES_EXPORTER")
        if exporter is not None and exporter not in TRACE_EXPORTERS:
            raise SettingsError(
                f"OTEL_TRACES_EXPORTER must be one of {', '.join(TRACE_EXPORTERS)}, "
                f"not {exporter!r}"
            )
        endpoint = env.optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.optional(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        disabled = (env.optional("OTEL_SDK_DISABLED") or "").lower() == "true"
        wanted = exporter == "otlp" or (exporter is None and endpoint is not None)
        return cls(enabled=wanted and not disabled, service_name=env.optional("OTEL_SERVICE_NAME"))
