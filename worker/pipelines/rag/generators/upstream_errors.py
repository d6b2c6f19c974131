"""What a failure of the model server means for the client: the ``error`` event's code and
message, and whether another attempt may help (docs/rag-generators.md, "Upstream errors").

The model server's own message goes to the log, not to the client, except where it helps the
person asking (a context too long, or an error with no more specific code): a 401 or 429 from
OpenAI names the key's prefix and the organisation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from worker.pipelines import PipelineError

UNREACHABLE = "upstream_unreachable"
UNAUTHORIZED = "upstream_unauthorized"
RATE_LIMITED = "upstream_rate_limited"
CONTEXT_TOO_LONG = "upstream_context_too_long"
ERROR = "upstream_error"

# Statuses worth another attempt: the same request may pass a moment later.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# OpenAI's code for a context window overflow, and llama.cpp's error type for it; vLLM sends
# neither (its code is the status), only OpenAI's wording.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_CONTEXT_WORDS = "maximum context length"
# A 429 that no wait cures: the account has no credit left.
_QUOTA_CODE = "insufficient_quota"
DETAIL_CHARS = 200


class UpstreamError(PipelineError):
    """A failed request to the model server. A ``retryable`` one came before the first token
    and may pass on another attempt, after ``retry_after_s`` when the server named a wait."""

    def __init__(
        self,
        message: str,
        code: str,
        *,
        retryable: bool = False,
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message, code, retry_after_s=retry_after_s)
        self.retryable = retryable
        # The model server's own words, for the log.
        self.detail = detail


def error_object(body: bytes) -> dict[str, Any]:
    """The error object of an error body: ``{"error": {...}}`` (OpenAI, Ollama, llama.cpp)
    or the body itself (vLLM); empty when the body is not JSON."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(parsed, dict):
        return {}
    inner = parsed.get("error")
    if isinstance(inner, dict):
        return inner
    return parsed


def _error_codes(error: Mapping[str, Any]) -> set[str]:
    return {str(error.get(key)) for key in ("code", "type") if error.get(key) is not None}


def _context_too_long_error(error: Mapping[str, Any], detail: str) -> bool:
    return bool(_error_codes(error) & _CONTEXT_CODES) or _CONTEXT_WORDS in detail.lower()


def _upstream_message(error: Mapping[str, Any], body: bytes) -> str:
    message = error.get("message")
    if isinstance(message, str) and message:
        return message[:DETAIL_CHARS]
    return body.decode("utf-8", errors="replace").strip()[:DETAIL_CHARS]


def retry_after_s(headers: Mapping[str, str], now_s: float | None = None) -> float | None:
    """The wait a response asks for: ``retry-after-ms`` (OpenAI's), else ``Retry-After`` in
    seconds or as an HTTP date; None when it names none."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def _context_too_long(detail: str) -> UpstreamError:
    # The model server's message is kept: it says how long the model's context is.
    return UpstreamError(
        f"the question, its sources and the history are too long for the model: {detail}",
        CONTEXT_TOO_LONG,
        detail=detail,
    )


def from_response(status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
    """The failure a non-200 answer of the model server stands for."""
    error = error_object(body)
    codes = _error_codes(error)
    detail = _upstream_message(error, body)
    if status in (400, 413) and _context_too_long_error(error, detail):
        return _context_too_long(detail)
    if status in (401, 403):
        return UpstreamError(
            f"the model server refused chatstream's credentials ({status})",
            UNAUTHORIZED,
            detail=detail,
        )
    if status == 429 and _QUOTA_CODE in codes:
        return UpstreamError(
            "the model server's quota is used up (429 insufficient_quota)",
            RATE_LIMITED,
            detail=detail,
        )
    wait_s = retry_after_s(headers)
    if status == 429:
        after = f"; retry after {wait_s:g} s" if wait_s is not None else ""
        return UpstreamError(
            f"the model server is rate limiting chatstream (429){after}",
            RATE_LIMITED,
            retryable=True,
            retry_after_s=wait_s,
            detail=detail,
        )
    return UpstreamError(
        f"the model server answered {status}: {detail}",
        ERROR,
        retryable=status in RETRYABLE_STATUS,
        retry_after_s=wait_s,
        detail=detail,
    )


def from_stream_error(error: object) -> UpstreamError:
    """An ``error`` object the model server sent inside its stream, in place of a chunk."""
    if not isinstance(error, dict):
        return UpstreamError(f"the model server failed: {error}", ERROR, detail=str(error))
    detail = _upstream_message(error, b"")
    if _context_too_long_error(error, detail):
        return _context_too_long(detail)
    return UpstreamError(f"the model server failed: {detail or 'unknown error'}", ERROR)
