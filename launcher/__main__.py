"""``python -m launcher`` (``make run``): the gateway and a worker in one process on the
embedded transports, which needs no servers. It ingests ``DOCS_DIR`` at start-up and, with no
credentials configured, makes a development key and prints how to use it."""

from __future__ import annotations

import dataclasses
import secrets

from gateway.app import serve
from launcher.embedded import create_embedded_app
from shared.logging import configure_logging
from shared.settings import GatewaySettings, LoggingSettings, WorkerSettings

DEV_USER = "dev"


def main() -> None:
    configure_logging("gateway", LoggingSettings.from_env())
    settings = GatewaySettings.from_env()
    if not settings.connections.embedded:
        raise SystemExit(
            "python -m launcher runs on the embedded transports: unset REDIS_URL and AMQP_URL "
            "(with them, run python -m gateway and python -m worker, or make stack)"
        )
    if not settings.api_keys and settings.jwt_secret is None:
        # A newcomer's first run must work without configuration, and still need a token.
        settings = dataclasses.replace(
            settings, api_keys={f"dev-{secrets.token_urlsafe(12)}": DEV_USER}
        )
    if settings.api_keys:
        url = f"http://{settings.host}:{settings.port}"
        key = next(iter(settings.api_keys))
        print(
            f"chatstream (embedded) on {url}\n  try: curl -N -H 'Authorization: Bearer {key}' "
            f'-H \'Content-Type: application/json\' -d \'{{"text":"hello streaming world",'
            f'"pipeline":"echo"}}\' {url}/api/v1/chat/stream',
            flush=True,
        )
    serve(create_embedded_app(settings, WorkerSettings.from_env()), settings)


if __name__ == "__main__":
    main()
