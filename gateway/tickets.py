"""Stream tickets: short-lived, signed permission for one user to open one job's stream from a
native EventSource, which cannot send an Authorization header. A ticket holds the user and job
ids and an expiry; never the bearer token."""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from gateway.auth import decode_hs256
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
    claims = decode_hs256(
        token,
        secret,
        what="stream ticket",
        require=["exp", "sub", "job", "aud"],
        audience=TICKET_AUDIENCE,
    )
    if claims.get("job") != job_id or not isinstance(claims.get("sub"), str):
        raise unauthorized("the stream ticket is for another stream")
    return str(claims["sub"])
