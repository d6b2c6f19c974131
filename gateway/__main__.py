"""``python -m gateway``: serve the gateway (embedded when no REDIS_URL/AMQP_URL is set)."""

from __future__ import annotations

import dataclasses
import secrets

import uvloop
from aiohttp import web

from gateway.app import create_app
from shared.gc_tuning import settle_after_startup
from shared.logging import configure_logging, get_logger
from shared.settings import GatewaySettings, LoggingSettings

log = get_logger("gateway")

DEV_USER = "dev"


def main() -> None:
    configure_logging("gateway", LoggingSettings.from_env())
    settings = GatewaySettings.from_env()
    if settings.connections.embedded and not settings.api_keys and settings.jwt_secret is None:
        # A newcomer's first run must work without configuration, and still need a token.
        settings = dataclasses.replace(
            settings, api_keys={f"dev-{secrets.token_urlsafe(12)}": DEV_USER}
        )
    url = f"http://{settings.host}:{settings.port}"
    mode = "embedded" if settings.connections.embedded else "redis+rabbitmq"
    if settings.connections.embedded and settings.api_keys:
        key = next(iter(settings.api_keys))
        print(
            f"chatstream ({mode}) on {url}\n  try: curl -N -H 'Authorization: Bearer {key}' "
            f'-H \'Content-Type: application/json\' -d \'{{"text":"hello streaming world",'
            f'"pipeline":"echo"}}\' {url}/api/v1/chat/stream',
            flush=True,
        )
    log.info("gateway.starting", url=url, mode=mode, namespace=settings.connections.namespace)
    if not settings.api_keys and settings.jwt_secret is None:
        log.warning("gateway.no_credentials", hint="set AUTH_API_KEYS or AUTH_JWT_SECRET")
    app = create_app(settings)
    app.on_startup.append(_settle_gc)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        # A client that leaves cancels its handler at once, releasing its subscription.
        handler_cancellation=True,
        # Streams close over DRAIN_S on SIGTERM; the rest of shutdown needs a little more.
        shutdown_timeout=settings.drain_s + 5,
        loop=uvloop.new_event_loop(),
    )


async def _settle_gc(app: web.Application) -> None:
    # Last of the start-up hooks: the connections and stores exist by now.
    settle_after_startup()


if __name__ == "__main__":
    main()
