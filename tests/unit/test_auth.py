"""Who is calling: API keys and HS256 JWTs (``sub``, ``exp`` required, a small leeway)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from gateway.auth import authenticate
from gateway.errors import ApiError
from gateway.tickets import issue_ticket, redeem_ticket
from shared.settings import GatewaySettings

SECRET = "a-test-secret-of-at-least-thirty-two-bytes"
OTHER_SECRET = "another-test-secret-of-thirty-two-bytes"
SETTINGS = GatewaySettings(api_keys={"k1": "alice"}, jwt_secret=SECRET, jwt_leeway_s=30)


def token(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def refused(raw: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        authenticate(raw, SETTINGS)
    assert caught.value.status == 401 and caught.value.headers == {"WWW-Authenticate": "Bearer"}
    return caught.value


def test_an_api_key_and_a_valid_jwt_name_their_user() -> None:
    assert authenticate("k1", SETTINGS) == "alice"
    assert authenticate(token({"sub": "bob", "exp": time.time() + 60}), SETTINGS) == "bob"
    # Expired, but within the leeway.
    assert authenticate(token({"sub": "bob", "exp": time.time() - 10}), SETTINGS) == "bob"


def test_bad_tokens_are_401() -> None:
    now = time.time()
    refused("nope")
    refused(token({"sub": "bob", "exp": now - 120}))  # expired past the leeway
    refused(token({"sub": "bob", "exp": now + 60}, secret=OTHER_SECRET))
    refused(token({"sub": "bob"}))  # no exp
    refused(token({"exp": now + 60}))  # no sub
    refused(token({"sub": "", "exp": now + 60}))
    refused(token({"sub": "bob", "exp": now + 60}, secret="", algorithm="none"))


def test_a_ticket_opens_only_its_own_job_until_it_expires() -> None:
    ticket = issue_ticket(SECRET, "alice", "job-1", ttl_s=60)
    assert redeem_ticket(SECRET, ticket.token, "job-1") == "alice"
    for job, secret in (("job-2", SECRET), ("job-1", OTHER_SECRET)):
        with pytest.raises(ApiError) as caught:
            redeem_ticket(secret, ticket.token, job)
        assert caught.value.status == 401
    expired = issue_ticket(SECRET, "alice", "job-1", ttl_s=-1)
    with pytest.raises(ApiError):
        redeem_ticket(SECRET, expired.token, "job-1")
    # A bearer JWT is not a ticket (no audience, no job).
    with pytest.raises(ApiError):
        redeem_ticket(SECRET, token({"sub": "alice", "exp": time.time() + 60}), "job-1")
