"""Every error leaves in the contract's shape: {"error": {type, message, param, code}}.

What an error says is worked out here once (`domain_error_detail`, `request_problems`); the seed-era routes
render the same in their own envelope (`autobots.compat.routing`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autobots.errors import AutobotsError, InvalidRequest, InvalidWorkflowSpec
from autobots.workflows.validation import format_location
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("autobots.web")

_TYPE_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
                   413: "invalid_request_error", 415: "invalid_request_error", 422: "invalid_request_error",
                   429: "rate_limit_error"}


def error_body(type: str, message: str, *, param: str | None = None, code: str | None = None,
               **extra: Any) -> dict[str, Any]:
    return {"error": {"type": type, "message": message, "param": param, "code": code, **extra}}


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


def domain_error_detail(exc: AutobotsError) -> dict[str, Any]:
    """The error fields of a domain error (with every problem, for an invalid workflow spec)."""
    extra: dict[str, Any] = {"errors": exc.errors} if isinstance(exc, InvalidWorkflowSpec) else {}
    return {"type": exc.type, "message": exc.message, "param": exc.param, "code": exc.code, **extra}


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AutobotsError)
    return error_response(exc.status, {"error": domain_error_detail(exc)}, headers=getattr(exc, "headers", None))


def request_location(loc: tuple[Any, ...]) -> str:
    """A request validation error's location as a dotted path, without where it was (`body`, `query`, ...);
    empty for the whole body."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return format_location(parts)


@dataclass(frozen=True)
class RequestProblems:
    """What a `RequestValidationError` says: whether the body is JSON at all, the first problem as the message
    (`<path>: <problem>`) and its path as the param, and every problem as `{path, message}`."""

    invalid_json: bool
    message: str
    param: str | None
    errors: list[dict[str, str]]


def request_problems(exc: RequestValidationError, *,
                     location: Callable[[tuple[Any, ...]], str] = request_location) -> RequestProblems:
    """The problems of a request that failed validation, their paths given by `location`."""
    raw = exc.errors()
    errors = [{"path": location(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in raw]
    first = errors[0] if errors else {"path": "", "message": "invalid request"}
    return RequestProblems(invalid_json=any(e.get("type") == "json_invalid" for e in raw),
                           message=f"{first['path']}: {first['message']}" if first["path"] else first["message"],
                           param=first["path"] or None, errors=errors)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = request_problems(exc)
    if problems.invalid_json:
        return error_response(400, error_body("invalid_request_error", "the body is not valid JSON",
                                              param=None, code="invalid_json"))
    return error_response(422, error_body("invalid_request_error", problems.message, param=problems.param,
                                          code="invalid_value", errors=problems.errors))


def body_parse_error(exc: StarletteHTTPException) -> AutobotsError | None:
    """The domain error for FastAPI's own failure to read or decode a JSON body (other than a syntax error, which
    it reports as a validation error): a 400 raised from the reader's or decoder's exception, e.g. nesting too
    deep, or a refusal of ours while the body arrived."""
    if exc.status_code != 400 or exc.__cause__ is None:
        return None
    if isinstance(exc.__cause__, AutobotsError):
        return exc.__cause__
    reason = "it is nested too deeply" if isinstance(exc.__cause__, RecursionError) else "it cannot be decoded"
    return InvalidRequest(f"the body is not valid JSON: {reason}", code="invalid_body")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    parse_error = body_parse_error(exc)
    if parse_error is not None:
        return await _domain_error(request, parse_error)
    type = _TYPE_BY_STATUS.get(exc.status_code, "api_error")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status_code)
    return error_response(exc.status_code, error_body(type, message, code=code), headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, error_body("api_error", "internal server error", code="internal_error"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AutobotsError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
