"""How a model server's error answer is read (pure): the code, whether to try again, and the
wait its headers ask for. Recorded OpenAI answers are tested end to end in tests/rag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from worker.pipelines.rag.generators import upstream_errors
from worker.pipelines.rag.generators.upstream_errors import from_response, retry_after_s

NOW_S = 1_750_000_000.0


@pytest.mark.parametrize(
    ("headers", "wait_s"),
    [
        ({}, None),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "0.5"}, 0.5),
        # OpenAI's own, in milliseconds, wins over the seconds.
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        (
            {"retry-after": format_datetime(datetime.fromtimestamp(NOW_S + 20, UTC), usegmt=True)},
            20.0,
        ),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_http_dates(
    headers: dict[str, str], wait_s: float | None
) -> None:
    assert retry_after_s(headers, now_s=NOW_S) == wait_s


def test_vllms_context_error_is_known_by_its_wording() -> None:
    # vLLM's error body: the object itself, its code the status.
    body = {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens. However, you requested "
        "5120 tokens (4608 in the messages, 512 in the completion). Please reduce the length "
        "of the messages or completion.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    failure = from_response(400, {}, json.dumps(body).encode())
    assert failure.code == upstream_errors.CONTEXT_TOO_LONG and not failure.retryable


def test_llama_cpps_context_error_is_known_by_its_type() -> None:
    body = {
        "error": {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 5000,
            "n_ctx": 4096,
        }
    }
    failure = from_response(400, {}, json.dumps(body).encode())
    assert failure.code == upstream_errors.CONTEXT_TOO_LONG and not failure.retryable


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (401, upstream_errors.UNAUTHORIZED, False),
        (403, upstream_errors.UNAUTHORIZED, False),
        (404, upstream_errors.ERROR, False),
        (408, upstream_errors.ERROR, True),
        (429, upstream_errors.RATE_LIMITED, True),
        (500, upstream_errors.ERROR, True),
        (503, upstream_errors.ERROR, True),
    ],
)
def test_a_status_without_a_known_error_code(status: int, code: str, retryable: bool) -> None:
    failure = from_response(status, {}, b"<html>bad gateway</html>")
    assert (failure.code, failure.retryable) == (code, retryable)
