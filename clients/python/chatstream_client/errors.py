"""What the client raises."""

from __future__ import annotations

import json
from typing import Any


class ChatstreamError(Exception):
    """The gateway refused a request with the contract's error body (``status`` and ``code``
    as in docs/api.md, "Errors"), or could not be reached (``status`` 0, ``code`` "network")."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        *,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        # The gateway's Retry-After, on a 429 or a 503.
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"

    @property
    def retryable(self) -> bool:
        """Worth trying again later: the network, a 429, or a server-side failure."""
        return self.status in {0, 429} or self.status >= 500


class ProtocolError(Exception):
    """The gateway sent something the contract does not allow (a malformed event or body)."""


class StreamCut(Exception):
    """The connection ended, failed or fell silent before the job's final event; the stream
    resumes after it by itself."""


def error_from_response(status: int, retry_after: str | None, body: bytes) -> ChatstreamError:
    """A non-2xx answer as a ChatstreamError with the contract's code, message and details."""
    code, message, details = f"http_{status}", f"the gateway answered {status}", None
    try:
        error = json.loads(body)["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError, AttributeError):
        pass  # Not the contract's body (a proxy's page): the status says what is known.
    retry_after_s = float(retry_after) if retry_after and retry_after.isdigit() else None
    return ChatstreamError(status, code, message, details, retry_after_s=retry_after_s)


def unreachable(error: Exception) -> ChatstreamError:
    """A request that got no answer: the gateway is down, unreachable, or fell silent."""
    return ChatstreamError(0, "network", f"cannot reach the gateway: {error}")
