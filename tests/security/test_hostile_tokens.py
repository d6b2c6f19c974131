"""Bearer JWTs an attacker would try: forged, expired, unsigned (``alg: none``), signed with
another algorithm (HS512, an RS256 header over an HMAC), claims of the wrong type or out of
range, missing claims, too long a life, the wrong issuer or audience, a stream ticket. Each is
401 ``unauthorized`` with ``WWW-Authenticate: Bearer``, on every kind of route."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.tickets import issue_ticket
from shared.settings import ConnectionSettings
from tests.conftest import GatewayFactory
from tests.security.support import Client, assert_error, send

SECRET = "a-test-secret-of-at-least-thirty-two-bytes"
ISSUER = "https://id.example.test"
AUDIENCE = "chatstream"
ROUTES = (("GET", "/api/v1/sessions"), ("POST", "/api/v1/chat/stream"), ("GET", "/v1/models"))


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def token(
    claims: dict[str, Any] | str,
    *,
    alg: str = "HS256",
    secret: str = SECRET,
    digest: Callable[..., Any] | None = hashlib.sha256,
) -> str:
    """A JWT made by hand, so that it can be anything: ``claims`` as given (a string is sent
    as it is, for what json.dumps would not write), the header's ``alg`` whatever it says, and
    the signature by ``digest`` (None: no signature)."""
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64((claims if isinstance(claims, str) else json.dumps(claims)).encode())
    signing_input = header + b"." + payload
    signature = b""
    if digest is not None:
        signature = b64(hmac.new(secret.encode(), signing_input, digest).digest())
    return (signing_input + b"." + signature).decode()


def good(**claims: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "alice", "iat": now, "exp": now + 600, **claims}


def without(*names: str) -> dict[str, Any]:
    return {k: v for k, v in good().items() if k not in names}


def with_literal(name: str, literal: str) -> str:
    """Good claims as JSON text, with ``name`` set to ``literal`` (such as ``NaN``, which a
    JSON parser may take and json.dumps would write only as a Python float)."""
    return json.dumps(good(**{name: "__LITERAL__"})).replace('"__LITERAL__"', literal)


def hostile_tokens() -> dict[str, str]:
    """Made when a test runs, not at import: a token made long before its test runs would be
    refused as expired, whatever else is wrong with it, and a good one too."""
    now = int(time.time())
    return {
        "forged": token(good(), secret="another-secret-of-at-least-thirty-two-bytes"),
        "expired": token(good(iat=now - 7200, exp=now - 3600)),
        "alg-none": token(good(), alg="none", digest=None),
        "alg-none-capitalized": token(good(), alg="None", digest=None),
        "alg-none-with-signature": token(good(), alg="none"),
        "alg-hs512": token(good(), alg="HS512", digest=hashlib.sha512),
        "alg-rs256-over-hmac": token(good(), alg="RS256"),
        "signature-stripped": token(good()).rsplit(".", 1)[0] + ".",
        "exp-string": token(good(exp=str(now + 600))),
        "exp-bool": token(good(exp=True)),
        "exp-null": token(good(exp=None)),
        "exp-infinity": token(with_literal("exp", "Infinity")),
        "exp-1e309": token(with_literal("exp", "1e309")),
        "exp-nan": token(with_literal("exp", "NaN")),
        "exp-10**400": token(good(exp=10**400)),
        "iat-string": token(good(iat=str(now))),
        "iat-infinity": token(with_literal("iat", "Infinity")),
        "nbf-infinity": token(with_literal("nbf", "-Infinity")),
        "nbf-string": token(good(nbf=str(now))),
        "nbf-in-the-future": token(good(nbf=now + 3600)),
        "sub-number": token(good(sub=123)),
        "sub-list": token(good(sub=["alice"])),
        "sub-object": token(good(sub={"id": "alice"})),
        "sub-empty": token(good(sub="")),
        "sub-null": token(good(sub=None)),
        "missing-sub": token(without("sub")),
        "missing-exp": token(without("exp")),
        "lives-two-days": token(good(exp=now + 2 * 86_400)),
        "exp-in-year-3000": token(without("iat") | {"exp": 32_503_680_000}),
        "audience-nobody-configured": token(good(aud="chatstream")),
        "claims-not-an-object": token('["alice"]'),
        "claims-not-json": token("alice"),
        "header-not-json": "bm90IGpzb24." + token(good()).split(".", 1)[1],
        "three-dots": "a.b.c",
        "empty-parts": "..",
        "stream-ticket": issue_ticket(SECRET, "alice", "some-job", ttl_s=600).token,
    }


# With AUTH_JWT_ISSUER and AUTH_JWT_AUDIENCE set.
STRICT = {"iss": ISSUER, "aud": AUDIENCE}


def hostile_to_strict() -> dict[str, str]:
    return {
        "issuer-missing": token(good(aud=AUDIENCE)),
        "issuer-wrong": token(good(**STRICT) | {"iss": "https://evil.example.test"}),
        "issuer-a-list": token(good(**STRICT) | {"iss": [ISSUER]}),
        "issuer-a-number": token(good(**STRICT) | {"iss": 1}),
        "audience-missing": token(good(iss=ISSUER)),
        "audience-wrong": token(good(**STRICT) | {"aud": "other"}),
        "audience-list-without-ours": token(good(**STRICT) | {"aud": ["other", "more"]}),
        "audience-a-number": token(good(**STRICT) | {"aud": 1}),
        "forged-but-well-claimed": token(good(**STRICT), secret="x" * 40),
    }


async def jwt_gateway(start_gateway: GatewayFactory, namespace: str, **overrides: Any) -> Client:
    return await start_gateway(
        ConnectionSettings(namespace=namespace), jwt_secret=SECRET, **overrides
    )


async def assert_every_route_refuses(gateway: Client, tokens: dict[str, str]) -> None:
    body = json.dumps({"text": "hi", "pipeline": "echo"}).encode()
    for case, raw in tokens.items():
        for method, path in ROUTES:
            reply = await send(
                gateway,
                method,
                path,
                headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
                body=body if method == "POST" else None,
            )
            assert_error(reply, 401, "unauthorized", (case, path))


async def assert_accepted(gateway: Client, raw: str) -> None:
    reply = await send(
        gateway, "GET", "/api/v1/sessions", headers={"Authorization": f"Bearer {raw}"}
    )
    assert reply.status == 200, reply.text


async def test_a_hostile_jwt_is_401_with_www_authenticate(
    start_gateway: GatewayFactory, namespace: str
) -> None:
    gateway = await jwt_gateway(start_gateway, namespace)
    await assert_accepted(gateway, token(good()))
    await assert_every_route_refuses(gateway, hostile_tokens())


async def test_a_jwt_of_the_wrong_issuer_or_audience_is_401_when_they_are_set(
    start_gateway: GatewayFactory, namespace: str
) -> None:
    gateway = await jwt_gateway(start_gateway, namespace, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)
    await assert_accepted(gateway, token(good(**STRICT)))
    await assert_accepted(gateway, token(good(**STRICT) | {"aud": ["other", AUDIENCE]}))
    await assert_every_route_refuses(gateway, hostile_to_strict())


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Basic YWxpY2U6eA==", "bearer", "Token x"])
async def test_an_authorization_that_is_no_bearer_token_is_401(
    start_gateway: GatewayFactory, namespace: str, header: str
) -> None:
    gateway = await jwt_gateway(start_gateway, namespace)
    reply = await send(gateway, "GET", "/api/v1/sessions", headers={"Authorization": header})
    assert_error(reply, 401, "unauthorized", header)
