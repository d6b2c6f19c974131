"""``python -m launcher`` (``make run``): the gateway and a worker in one process on the
embedded transports, which needs no servers. It ingests ``DOCS_DIR`` at start-up and, with no
credentials configured, makes a development key and prints how to use it."""

from __future__ import annotations

import dataclasses
import secrets

from gateway.app import serve
from launcher.embedded import create_embedded_app
from shared.logging import configure_logging
from shared.settings import (
    GatewaySettings,
    LoggingSettings,
    TracingSettings,
    WorkerSettings,
    exit_on_settings_error,
)
from shared.tracing import configure_tracing, shutdown_tracing

DEV_USER = "dev"


def with_development_key(settings: GatewaySettings) -> tuple[GatewaySettings, str | None]:
    """``settings`` with a fresh development key when no credentials are configured (a
    newcomer's first run must work without configuration, and still need a token), and that
    key; otherwise ``settings`` unchanged and None."""
    if settings.api_keys or settings.jwt_secret is not None:
        return settings, None
    key = f"dev-{secrets.token_urlsafe(12)}"
    return dataclasses.replace(settings, api_keys={key: DEV_USER}), key


def startup_hint(settings: GatewaySettings, development_key: str | None) -> str:
    """Where the server listens and a curl line to try it. Only a key made for this run is
    printed: a configured one is a credential, and logs and terminals are shared."""
    url = f"http://{settings.host}:{settings.port}"
    token = development_key or ("<your key>" if settings.api_keys else "<your JWT>")
    return (
        f"chatstream (embedded) on {url}\n  try: curl -N -H 'Authorization: Bearer {token}' "
        f'-H \'Content-Type: application/json\' -d \'{{"text":"hello streaming world",'
        f'"pipeline":"echo"}}\' {url}/api/v1/chat/stream'
    )


def main() -> None:
    with exit_on_settings_error():
        configure_logging("gateway", LoggingSettings.from_env())
        settings = GatewaySettings.from_env()
        worker_settings = WorkerSettings.from_env()
        tracing = TracingSettings.from_env()
    if not settings.connections.embedded:
        raise SystemExit(
            "python -m launcher runs on the embedded transports: unset REDIS_URL and AMQP_URL "
            "(with them, run python -m gateway and python -m worker, or make stack)"
        )
    settings, development_key = with_development_key(settings)
    print(startup_hint(settings, development_key), flush=True)
    provider = configure_tracing("chatstream", tracing)
    try:
        serve(create_embedded_app(settings, worker_settings), settings)
    finally:
        shutdown_tracing(provider)


if __name__ == "__main__":
    main()
