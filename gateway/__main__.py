"""``python -m gateway``: serve the gateway on the real Redis and RabbitMQ."""

from __future__ import annotations

from gateway.app import create_app, serve
from shared.logging import configure_logging
from shared.settings import GatewaySettings, LoggingSettings, TracingSettings
from shared.tracing import configure_tracing, shutdown_tracing


def main() -> None:
    configure_logging("gateway", LoggingSettings.from_env())
    settings = GatewaySettings.from_env()
    if settings.connections.embedded:
        raise SystemExit(
            "the gateway needs REDIS_URL and AMQP_URL (`make run` serves gateway and worker "
            "in one process without them: python -m launcher)"
        )
    provider = configure_tracing("gateway", TracingSettings.from_env())
    try:
        serve(create_app(settings), settings)
    finally:
        shutdown_tracing(provider)


if __name__ == "__main__":
    main()
