"""Who is calling: API keys and HS256 JWTs (``sub``, ``exp`` required, a small leeway)."""

from __future__ import annotations

import time
from dataclasses import replace
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


STRICT = replace(
    SETTINGS, jwt_issuer="https://id.example", jwt_audience="chatstream", jwt_max_lifetime_s=3600
)


def refused_by(settings: GatewaySettings, raw: str) -> str:
    with pytest.raises(ApiError) as caught:
        authenticate(raw, settings)
    assert caught.value.status == 401
    return caught.value.message


def test_a_jwt_with_the_wrong_issuer_or_audience_is_401_when_they_are_set() -> None:
    now = time.time()
    good = {"sub": "bob", "exp": now + 60, "iss": "https://id.example", "aud": "chatstream"}
    assert authenticate(token(good), STRICT) == "bob"
    assert authenticate(token({**good, "aud": ["other", "chatstream"]}), STRICT) == "bob"
    for claims in (
        {**good, "iss": "https://evil.example"},
        {k: v for k, v in good.items() if k != "iss"},
        {**good, "aud": "other"},
        {k: v for k, v in good.items() if k != "aud"},
    ):
        refused_by(STRICT, token(claims))
    # Unset, neither is required; a token naming an audience nobody configured is refused.
    assert authenticate(token({"sub": "bob", "exp": now + 60, "iss": "any"}), SETTINGS) == "bob"
    refused_by(SETTINGS, token({"sub": "bob", "exp": now + 60, "aud": "chatstream"}))


def test_a_jwt_that_lives_longer_than_the_maximum_is_401() -> None:
    now = int(time.time())
    hour = replace(SETTINGS, jwt_max_lifetime_s=3600)
    assert authenticate(token({"sub": "bob", "iat": now, "exp": now + 3600}), hour) == "bob"
    assert authenticate(token({"sub": "bob", "exp": now + 3500}), hour) == "bob"
    year_3000 = 32503680000
    assert "longer than" in refused_by(SETTINGS, token({"sub": "bob", "exp": year_3000}))
    lifetime_too_long = {"sub": "bob", "iat": now - 60, "exp": now + 86_400}
    assert "longer than" in refused_by(SETTINGS, token(lifetime_too_long))
    # Judged from iat: a token issued long ago for a long time stays refused near its end.
    refused_by(hour, token({"sub": "bob", "iat": now - 7200, "exp": now + 60}))


def test_a_jwt_whose_exp_is_a_string_is_401() -> None:
    now = int(time.time())
    for claims in (
        {"sub": "bob", "exp": str(now + 60)},
        {"sub": "bob", "exp": now + 60, "iat": str(now)},
        {"sub": "bob", "exp": now + 60, "nbf": str(now)},
        {"sub": "bob", "exp": True},
    ):
        refused_by(SETTINGS, token(claims))


def test_a_stream_ticket_is_never_a_bearer_token() -> None:
    ticket = issue_ticket(SECRET, "alice", "job-1", ttl_s=60)
    refused_by(SETTINGS, ticket.token)
    # Even when the configured audience is the tickets' own.
    refused_by(replace(SETTINGS, jwt_audience="chatstream:stream"), ticket.token)


def test_an_api_key_user_and_a_jwt_subject_of_the_same_name_are_one_user() -> None:
    assert authenticate("k1", SETTINGS) == "alice"
    assert authenticate(token({"sub": "alice", "exp": time.time() + 60}), SETTINGS) == "alice"


def test_the_jwt_policy_settings_are_read_from_the_environment() -> None:
    settings = GatewaySettings.from_env(
        {
            "AUTH_JWT_ISSUER": "https://id.example",
            "AUTH_JWT_AUDIENCE": "chatstream",
            "AUTH_JWT_MAX_LIFETIME_S": "600",
        }
    )
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://id.example", "chatstream")
    assert settings.jwt_max_lifetime_s == 600
    default = GatewaySettings.from_env({})
    assert default.jwt_issuer is None and default.jwt_audience is None
    assert default.jwt_max_lifetime_s == 86_400


def test_a_jwt_whose_exp_or_iat_is_too_large_for_a_float_is_401_not_500() -> None:
    now = int(time.time())
    for claims in (
        {"sub": "bob", "exp": 10**400},
        {"sub": "bob", "exp": now + 60, "iat": 10**400},
        {"sub": "bob", "exp": now + 60, "nbf": -(10**400)},
    ):
        refused_by(SETTINGS, token(claims))
