"""/api/v1/runs: read, cancel, stream events, and the files a run's code wrote."""

from __future__ import annotations

from typing import Annotated, Any

from autobots.db.tables import Run
from autobots.errors import InvalidRequest
from autobots.runs import service as run_service
from autobots.web import run_files
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, ServicesDep
from autobots.web.quotas import OVER_QUOTA, StreamSlot
from autobots.web.schemas import ErrorBody, RunEventOut, RunOut, event_out, run_out
from autobots.web.sse import event_stream_response, run_events, wants_event_stream
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import Response

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such run (or not yours)"}}


async def run_from_path(run_id: str, user: CurrentUser, services: ServicesDep) -> Run:
    """The caller's run, loaded in a read of its own (see sessions.session_from_path)."""
    async with services.db.read_session() as db:
        return await run_service.get_or_raise(db, user_id=user.id, run_id=run_id)


RunFromPath = Annotated[Run, Depends(run_from_path)]


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND)
async def get_run(run: RunFromPath) -> dict[str, Any]:
    """One run."""
    return run_out(run)


@router.post("/{run_id}/cancel", response_model=RunOut, responses=NOT_FOUND)
async def cancel_run(run: RunFromPath, services: ServicesDep) -> dict[str, Any]:
    """Ask the run to stop; idempotent, and a finished run is returned unchanged."""
    return run_out(await services.runs.cancel(run))


def _resume_point(starting_after: int | None, last_event_id: str | None) -> int:
    if starting_after is not None:
        return starting_after
    if last_event_id is None:
        return 0
    if not last_event_id.strip().isdigit():
        raise InvalidRequest("Last-Event-ID must be an event sequence number", param="Last-Event-ID")
    return int(last_event_id)


@router.get("/{run_id}/events", response_model=list[RunEventOut], responses={
    **NOT_FOUND, **OVER_QUOTA, 200: {"content": {"text/event-stream": {}, "application/json": {}},
                       "description": "A JSON list, or Server-Sent Events with Accept: text/event-stream"}})
async def list_run_events(run: RunFromPath, stream_slot: StreamSlot, db: DbSession, services: ServicesDep,
                          starting_after: Annotated[int | None, Query(ge=0)] = None,
                          last_event_id: Annotated[str | None, Header(max_length=20)] = None,
                          accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Any:
    """The run's events: JSON, or a resumable SSE stream that follows a live run until `done`."""
    position = _resume_point(starting_after, last_event_id)
    if wants_event_stream(accept):
        await db.commit()  # a stream may last minutes: give the connection back to the pool first
        return event_stream_response(run_events(services.db, services.runs, run.id, position))
    return [event_out(row) for row in await run_service.list_events(db, run_id=run.id, starting_after=position)]


@router.get("/{run_id}/files", responses=NOT_FOUND)
async def list_run_files(run: RunFromPath, services: ServicesDep) -> dict[str, Any]:
    """Files the run's code wrote in its sandbox workspace (`truncated` when the listing's limits cut it)."""
    return await run_files.list_run_files(services.sandbox, run.id)


@router.get("/{run_id}/files/{path:path}", response_class=Response, responses={
    **NOT_FOUND, 200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"},
    422: {"model": ErrorBody, "description": "The file is larger than the download limit (`file_too_large`)"}})
async def download_run_file(run: RunFromPath, path: str, services: ServicesDep) -> Response:
    """Download one file of the run's workspace, streamed."""
    return await run_files.download_run_file(services.sandbox, run.id, path,
                                             limit=services.settings.max_download_bytes)
