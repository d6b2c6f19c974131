"""Every regex that validates an id takes the whole string: "$" would let a final newline in."""

from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import make_mocked_request

from gateway.middlewares import request_id_of
from shared.ids import normalize_session_id


@pytest.mark.parametrize("bad", ["777\n", f"{uuid.uuid4()}\n", "777\r", " 777", "7\n77"])
def test_a_session_id_with_a_trailing_newline_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="digits"):
        normalize_session_id(bad)


def test_a_request_id_with_a_trailing_newline_is_replaced() -> None:
    request = make_mocked_request("GET", "/", headers={"X-Request-ID": "abc\n"})
    assert request_id_of(request) != "abc\n"
    sane = make_mocked_request("GET", "/", headers={"X-Request-ID": "abc-1"})
    assert request_id_of(sane) == "abc-1"
