"""Who is calling: a static API key from AUTH_API_KEYS, or an HS256 JWT whose ``sub`` is the
user."""

from __future__ import annotations

import hmac
from typing import Any

import jwt
from aiohttp import web

from gateway.appkeys import USER_ID
from gateway.errors import unauthorized
from shared.settings import GatewaySettings

BEARER_PREFIX = "bearer "


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith(BEARER_PREFIX):
        raise unauthorized("a bearer token is required")
    token = header[len(BEARER_PREFIX) :].strip()
    if not token:
        raise unauthorized("a bearer token is required")
    return token


def authenticate(token: str, settings: GatewaySettings) -> str:
    """The user id behind ``token``, or 401."""
    user = _api_key_user(token, settings)
    if user is not None:
        return user
    if settings.jwt_secret is not None and token.count(".") == 2:
        return _jwt_user(token, settings.jwt_secret, settings.jwt_leeway_s)
    raise unauthorized("the bearer token is not valid")


def _api_key_user(token: str, settings: GatewaySettings) -> str | None:
    # Compare against every key in constant time, so timing tells nothing about near misses.
    found: str | None = None
    for key, user in settings.api_keys.items():
        if hmac.compare_digest(key.encode(), token.encode()):
            found = user
    return found


def decode_hs256(
    token: str,
    secret: str,
    *,
    what: str,
    require: list[str],
    audience: str | None = None,
    leeway_s: int = 0,
) -> dict[str, Any]:
    """The claims of an HS256 token (a bearer JWT or a stream ticket), or 401 naming ``what``."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            leeway=leeway_s,
            options={"require": require},
        )
    except jwt.ExpiredSignatureError as e:
        raise unauthorized(f"the {what} has expired") from e
    except jwt.InvalidTokenError as e:
        raise unauthorized(f"the {what} is not valid") from e
    return claims


def _jwt_user(token: str, secret: str, leeway_s: int) -> str:
    claims = decode_hs256(
        token, secret, what="bearer token", require=["exp", "sub"], leeway_s=leeway_s
    )
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise unauthorized("the token has no subject")
    return subject


def user_of(request: web.Request) -> str:
    user = request.get(USER_ID)
    if not isinstance(user, str):
        raise unauthorized("not authenticated")
    return user
