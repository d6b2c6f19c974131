"""Stream tickets: short-lived, signed permission for one user to open one job's stream from a
native EventSource, which cannot send an Authorization header. A ticket holds the user and job
ids and an expiry; never the bearer token."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from gateway.errors import unauthorized

TICKET_AUDIENCE = "chatstream:stream"


@dataclass(frozen=True, slots=True)
class Ticket:
    token: str
    expires_at: int


def issue_ticket(secret: str, user_id: str, job_id: str, ttl_s: int) -> Ticket:
    expires_at = int(time.time()) + ttl_s
    claims = {"sub": user_id, "job": job_id, "exp": expires_at, "aud": TICKET_AUDIENCE}
    return Ticket(jwt.encode(claims, secret, algorithm="HS256"), expires_at)


def redeem_ticket(secret: str, token: str, job_id: str) -> str:
    """The user a ticket was issued to, if it is genuine, unexpired and for ``job_id``."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=TICKET_AUDIENCE,
            options={"require": ["exp", "sub", "job", "aud"]},
        )
    except jwt.ExpiredSignatureError as e:
        raise unauthorized("the stream ticket has expired") from e
    except jwt.InvalidTokenError as e:
        raise unauthorized("the stream ticket is not valid") from e
    if claims.get("job") != job_id or not isinstance(claims.get("sub"), str):
        raise unauthorized("the stream ticket is for another stream")
    return str(claims["sub"])
