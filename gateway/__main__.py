"""``python -m gateway``: serve the gateway on the real Redis and RabbitMQ."""

from __future__ import annotations

from gateway.app import create_app, serve
from shared.logging import configure_logging
from shared.settings import (
    GatewaySettings,
    LoggingSettings,
    TracingSettings,
    exit_on_settings_error,
)
from shared.tracing import configure_tracing, shutdown_tracing


def main() -> None:
    with exit_on_settings_error():
        configure_logging("gateway", LoggingSettings.from_env())
        settings = GatewaySettings.from_env()
        tracing = TracingSettings.from_env()
    if settings.connections.embedded:
        raise SystemExit(
            "the gateway needs Redis (REDIS_URL or REDIS_SENTINELS) and AMQP_URL (`make run` "
            "serves gateway and worker in one process without them: python -m launcher)"
        )
    provider = configure_tracing("gateway", tracing)
    try:
        serve(create_app(settings), settings)
    finally:
        shutdown_tracing(provider)


if __name__ == "__main__":
    main()
