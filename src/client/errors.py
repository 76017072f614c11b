"""Exceptions of the autobots client: API errors carry the error body of the HTTP contract."""

from __future__ import annotations

from typing import Any


class AutobotsClientError(Exception):
    """Base of every exception the client raises."""


class APIConnectionError(AutobotsClientError):
    """The server could not be reached, or the connection failed, after every retry."""


class AutobotsAPIError(AutobotsClientError):
    """The API answered with an error: `{"error": {type, message, param, code}}`.

    Args:
        status_code: The HTTP status.
        body: The decoded response body (the error envelope, or whatever the server sent).
        request_id: The `x-request-id` response header, when present.
        method: The method of the request that failed, when known.
        path: The path of the request that failed, when known.
    """

    def __init__(self, status_code: int, body: Any, *, request_id: str | None = None, method: str | None = None,
                 path: str | None = None) -> None:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.method = method
        self.path = path
        self.type: str = str(error.get("type") or "api_error")
        self.message: str = str(error.get("message") or f"HTTP {status_code}")
        self.param: str | None = error.get("param")
        self.code: str | None = error.get("code")
        request = f"{method} {path} -> " if method and path else ""
        super().__init__(f"{request}{status_code} {self.type}: {self.message}")


class InvalidRequestError(AutobotsAPIError):
    """400 or 422: the request was malformed; `param` names the field."""


class AuthenticationError(AutobotsAPIError):
    """401: no valid API key."""


class PermissionDeniedError(AutobotsAPIError):
    """403: the caller may not do this."""


class NotFoundError(AutobotsAPIError):
    """404: no such object, or not the caller's."""


class ConflictError(AutobotsAPIError):
    """409: a conflicting state (a busy session, an idempotency key reused with another body)."""


class RateLimitError(AutobotsAPIError):
    """429: over a quota, after every retry."""


class ServerError(AutobotsAPIError):
    """5xx: the server failed or is unavailable, after every retry."""


_BY_STATUS: dict[int, type[AutobotsAPIError]] = {
    400: InvalidRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 422: InvalidRequestError, 429: RateLimitError,
}


def error_for(status_code: int, body: Any, *, request_id: str | None = None, method: str | None = None,
              path: str | None = None) -> AutobotsAPIError:
    """The exception for an error response to `method path`."""
    cls = _BY_STATUS.get(status_code) or (ServerError if status_code >= 500 else AutobotsAPIError)
    return cls(status_code, body, request_id=request_id, method=method, path=path)
