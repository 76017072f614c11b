"""The seed-era envelope: answers are HTTP 200 `{"status": true, "message": str, "data"?: ...}`; errors are
`{"status": false, "message": "<path>: <problem>", "data": {type, code, param, errors?}}` with their HTTP status
(422 invalid body or flow_config, 401 no/invalid key, 404 unknown or foreign id, 409 busy session, 429 quota).

No dependency on the web layer: its middlewares use this too, for requests refused before any route.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

PREFIX = "/api/"
_V1_PREFIX = "/api/v1/"


class SeedError(BaseModel):
    status: bool = False
    message: str
    data: dict[str, Any] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": SeedError, "description": text} for status, text in (
        (401, "No or invalid API key"), (404, "Unknown session, message, gallery item or user (or not yours)"),
        (409, "The session has an active run"), (422, "Invalid body or flow_config; the message names the field"))}


def is_seed_path(path: str) -> bool:
    """Whether a request for `path` is answered in this envelope (a seed-era route, not a v1 one)."""
    return path.startswith(PREFIX) and not path.startswith(_V1_PREFIX)


def ok(message: str, data: Any) -> dict[str, Any]:
    return {"status": True, "message": message, "data": data}


def error_envelope(message: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"status": False, "message": message, "data": data}


def error_response(status: int, message: str, **data: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_envelope(message, data))
