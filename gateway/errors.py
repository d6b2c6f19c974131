"""The API's error bodies: ``{"error": {"code", "message", "details"}}`` for every failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

# The code each HTTP status is reported with when the router or aiohttp raises it.
STATUS_CODES: Mapping[int, str] = {
    400: "invalid_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}

RETRY_AFTER_S = 1


class ApiError(Exception):
    """A failure the client is told about in the API's error format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        return error_response(
            self.status, self.code, self.message, details=self.details, headers=self.headers
        )


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "details": details}},
        status=status,
        headers=headers,
    )


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def unavailable(message: str) -> ApiError:
    return ApiError(503, message, headers={"Retry-After": str(RETRY_AFTER_S)})


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, f"{what} not found")


def validation_error(field: str, message: str) -> ApiError:
    return ApiError(422, "the request is not valid", details=[{"field": field, "message": message}])


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """Re-express an exception raised by aiohttp or its router in the API's format."""
    headers: dict[str, str] = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    if exc.status == 413:
        message = "the request body is too large"
    elif exc.status == 404:
        message = "no such route"
    elif exc.status == 405:
        message = (
            f"method {exc.method if isinstance(exc, web.HTTPMethodNotAllowed) else ''} not allowed"
        )
    else:
        message = exc.reason
    return error_response(
        exc.status, STATUS_CODES.get(exc.status, "error"), message, headers=headers
    )
