"""The seed routes' route class and their unit of work: errors leave in the seed envelope, rendered as
`web/errors.py` works them out, after the request's unit of work is rolled back."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from autobots.compat import envelope
from autobots.compat.flow_config import error_path
from autobots.errors import AutobotsError
from autobots.web.deps import DbSession
from autobots.web.errors import body_parse_error, domain_error_detail, request_problems
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException


class SeedRoute(APIRoute):
    """Errors of these routes leave in the seed envelope, after the request's unit of work is rolled back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def seed_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AutobotsError as exc:
                await _rollback(request)
                detail = domain_error_detail(exc)
                response = envelope.error_response(exc.status, detail.pop("message"), **detail)
                response.headers.update(getattr(exc, "headers", None) or {})  # a quota's retry-after
                return response
            except RequestValidationError as exc:
                await _rollback(request)
                return _validation_error(exc)
            except HTTPException as exc:
                await _rollback(request)
                parse_error = body_parse_error(exc)
                if parse_error is not None:
                    return envelope.error_response(parse_error.status, parse_error.message, type=parse_error.type,
                                                   code=parse_error.code, param=None)
                return envelope.error_response(exc.status_code, str(exc.detail), type="invalid_request_error",
                                               code=None, param=None)

        return seed_handler


def _seed_location(loc: tuple[Any, ...]) -> str:
    """A field's path as the seed client sent it: without where it was, nor the union tags of the flow_config."""
    return error_path(loc[1:])


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    problems = request_problems(exc, location=_seed_location)
    if problems.invalid_json:  # the seed backend answered every invalid request 422
        return envelope.error_response(422, "the body is not valid JSON", type="invalid_request_error",
                                       code="invalid_json", param=None)
    return envelope.error_response(422, problems.message, type="invalid_request_error", code="invalid_value",
                                   param=problems.param, errors=problems.errors)


async def _rollback(request: Request) -> None:
    db: AsyncSession | None = getattr(request.state, "seed_db", None)
    if db is not None:
        await db.rollback()


async def seed_db(request: Request, db: DbSession) -> AsyncSession:
    """The request's unit of work, remembered so that `SeedRoute` can roll it back on an error."""
    request.state.seed_db = db
    return db


SeedDb = Annotated[AsyncSession, Depends(seed_db)]
