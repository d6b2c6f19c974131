"""Requests framed to be read two ways (request smuggling) or not at all: aiohttp's parser
refuses each with a plain-text 400 before the gateway sees it, and answers nothing smuggled in
behind it."""

from __future__ import annotations

import pytest

from tests.conftest import API_KEY
from tests.security.support import Client, assert_refused_by_the_parser, send_raw

HEAD = (
    b"POST /api/v1/sessions HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Type: application/json\r\n"
)
SMUGGLED = b"DELETE /api/v1/sessions/123 HTTP/1.1\r\nHost: test\r\n\r\n"
FRAMINGS = {
    "two-content-lengths": HEAD + b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}",
    "length-and-chunked": (
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED
    ),
    "unknown-transfer-coding": HEAD + b"Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "chunked-not-last": HEAD + b"Transfer-Encoding: chunked, identity\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    "negative-length": HEAD + b"Content-Length: -1\r\n\r\n{}",
    "signed-length": HEAD + b"Content-Length: +2\r\n\r\n{}",
    "fractional-length": HEAD + b"Content-Length: 2.0\r\n\r\n{}",
    "folded-header": HEAD + b"X-Request-ID: abc\r\n def\r\nContent-Length: 2\r\n\r\n{}",
    "space-before-colon": HEAD + b"Content-Length : 2\r\n\r\n{}",
    "bare-lf-lines": HEAD.replace(b"\r\n", b"\n") + b"Content-Length: 2\n\n{}",
    "chunk-size-overflow": (
        HEAD + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n"
    ),
    "nul-in-chunk-extension": (
        HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;\x00\r\n{}\r\n0\r\n\r\n" + SMUGGLED
    ),
    "nul-in-method": b"PO\x00ST /api/v1/sessions HTTP/1.1\r\nHost: test\r\n\r\n",
}


@pytest.mark.parametrize("framing", FRAMINGS)
async def test_an_ambiguous_or_malformed_framing_is_refused_by_the_parser(
    gateway: Client, framing: str
) -> None:
    reply = await send_raw(gateway, FRAMINGS[framing])
    assert_refused_by_the_parser(reply, framing)
    # Nothing after the refusal: no second request was read out of the first one's body.
    assert len(reply.body) == int(reply.headers["Content-Length"]), reply.body
