"""Every error leaves in the contract's shape: {"error": {type, message, param, code}}."""

from __future__ import annotations

import logging
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


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AutobotsError)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidWorkflowSpec):
        extra["errors"] = exc.errors
    return error_response(exc.status, error_body(exc.type, exc.message, param=exc.param, code=exc.code, **extra),
                          headers=getattr(exc, "headers", None))


def _location(loc: tuple[Any, ...]) -> str | None:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return format_location(parts) or None


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = _location(tuple(first.get("loc", ())))
    if first.get("type") == "json_invalid":
        return error_response(400, error_body("invalid_request_error", "the body is not valid JSON",
                                              param=None, code="invalid_json"))
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    details = [{"path": _location(tuple(e.get("loc", ()))) or "", "message": e["msg"]} for e in errors]
    return error_response(422, error_body("invalid_request_error", message, param=param, code="invalid_value",
                                          errors=details))


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
