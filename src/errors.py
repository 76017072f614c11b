"""Domain errors. Rooms subclass `AutobotsError`; `web/errors.py` renders them in the API's error shape."""

from __future__ import annotations

import math


class AutobotsError(Exception):
    """An expected failure with a fixed HTTP status and the contract's error fields.

    Args:
        message: Human-readable explanation, safe to show to the client.
        type: Error family (`invalid_request_error`, `not_found_error`, `conflict_error`, ...).
        code: Machine-readable code, e.g. `run_not_found`.
        param: The request field at fault, if any (dotted path).
        status: HTTP status code.
    """

    status: int = 400
    type: str = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if type is not None:
            self.type = type
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.param = param


class NotFound(AutobotsError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class Conflict(AutobotsError):
    status = 409
    type = "conflict_error"
    code = "conflict"


class InvalidRequest(AutobotsError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class Unauthorized(AutobotsError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class QuotaExceeded(AutobotsError):
    """A per-user quota is used up (429). `retry_after`: whole seconds after which a retry may succeed, sent as
    the `retry-after` header (`headers`)."""

    status = 429
    type = "rate_limit_error"
    code = "quota_exceeded"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, math.ceil(retry_after))

    @property
    def headers(self) -> dict[str, str]:
        return {"retry-after": str(self.retry_after)}


class InvalidWorkflowSpec(AutobotsError):
    """A workflow spec that fails validation; `errors` lists every problem as {path, message}."""

    status = 422
    type = "invalid_request_error"
    code = "invalid_workflow"

    def __init__(self, errors: list[dict[str, str]], *, param_prefix: str = "") -> None:
        first = errors[0] if errors else {"path": "", "message": "invalid workflow"}
        path = ".".join(part for part in (param_prefix, first["path"]) if part) or None
        super().__init__(f"{first['path'] or 'workflow'}: {first['message']}", param=path)
        self.errors = errors


class SandboxUnavailable(AutobotsError):
    status = 422
    type = "invalid_request_error"
    code = "sandbox_unavailable"
