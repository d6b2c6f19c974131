"""Who is calling: a static API key from AUTH_API_KEYS, or an HS256 JWT whose ``sub`` is the
user. Both name users in one namespace: an API key mapped to ``alice`` and a JWT whose ``sub``
is ``alice`` are the same user (the operator issues both)."""

from __future__ import annotations

import hmac
import math
import time
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
    # Only spaces and tabs: str.strip() would also drop a control character, a line separator
    # or U+0085, and accept a token that is not the one issued.
    token = header[len(BEARER_PREFIX) :].strip(" \t")
    if not token:
        raise unauthorized("a bearer token is required")
    return token


def authenticate(token: str, settings: GatewaySettings) -> str:
    """The user id behind ``token``, or 401."""
    user = _api_key_user(token, settings)
    if user is not None:
        return user
    if settings.jwt_secret is not None and token.count(".") == 2:
        return _jwt_user(token, settings)
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
    issuer: str | None = None,
    leeway_s: int = 0,
) -> dict[str, Any]:
    """The claims of an HS256 token (a bearer JWT or a stream ticket), or 401 naming ``what``.
    Without ``audience``, a token that names one is refused; without ``issuer``, any ``iss``
    is taken."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience,
            issuer=issuer,
            leeway=leeway_s,
            options={"require": require},
        )
    except jwt.ExpiredSignatureError as e:
        raise unauthorized(f"the {what} has expired") from e
    except jwt.InvalidTokenError as e:
        raise unauthorized(f"the {what} is not valid") from e
    return claims


# PyJWT takes any value int() takes for these, such as the string "32503680000".
_TIME_CLAIMS = ("exp", "iat", "nbf")


def _jwt_user(token: str, settings: GatewaySettings) -> str:
    assert settings.jwt_secret is not None
    claims = decode_hs256(
        token,
        settings.jwt_secret,
        what="bearer token",
        require=["exp", "sub"],
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        leeway_s=settings.jwt_leeway_s,
    )
    for name in _TIME_CLAIMS:
        if name in claims and not _is_seconds(claims[name]):
            raise unauthorized(f"the token's {name} must be a number")
    if _lifetime_s(claims) > settings.jwt_max_lifetime_s:
        raise unauthorized(f"the token lives longer than {settings.jwt_max_lifetime_s} seconds")
    if "job" in claims:
        # A stream ticket signed with the same secret opens one stream, nothing else.
        raise unauthorized("a stream ticket is not a bearer token")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise unauthorized("the token has no subject")
    return subject


def _is_seconds(value: object) -> bool:
    """A JSON number that is a time: finite, and small enough to be a float (an integer of
    400 digits is a number, but no time)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _lifetime_s(claims: dict[str, Any]) -> float:
    """From issue to expiry; without ``iat``, what is left of it now, which is all a token
    without an issue time can be judged by."""
    start = claims["iat"] if "iat" in claims else time.time()
    return float(claims["exp"]) - float(start)


def user_of(request: web.Request) -> str:
    user = request.get(USER_ID)
    if not isinstance(user, str):
        raise unauthorized("not authenticated")
    return user
