"""/api/v1/sessions: sessions, their messages and runs, and publishing to the gallery."""

from __future__ import annotations

from typing import Annotated, Any

from autobots.db.tables import ChatSession
from autobots.gallery import service as gallery_service
from autobots.runs import service as run_service
from autobots.sessions import service as session_service
from autobots.sessions.schemas import MessageOut, SessionOut, message_out, session_out
from autobots.web import admission
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, Pagination, ServicesDep
from autobots.web.quotas import OVER_QUOTA, StreamSlot
from autobots.web.schemas import (
    ErrorBody,
    GalleryItemOut,
    ListOf,
    MessageCreate,
    PostedMessage,
    PublishRequest,
    RunOut,
    SessionCreate,
    SessionUpdate,
    gallery_out,
    json_response,
    list_of,
    message_list_json,
    run_out,
)
from autobots.web.sse import event_stream_response, run_events, wants_event_stream
from autobots.workflows import service as workflow_service
from fastapi import APIRouter, Depends, Header, Query, Request, Response

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such session (or not yours)"}}
BUSY = {409: {"model": ErrorBody, "description": "The session has an active run"}}


async def session_from_path(session_id: str, user: CurrentUser, services: ServicesDep) -> ChatSession:
    """The caller's session, loaded in a read of its own that ends here (so the request's unit of work,
    which may write, does not begin with it)."""
    async with services.db.read_session() as db:
        return await session_service.get_or_raise(db, user_id=user.id, session_id=session_id)


SessionFromPath = Annotated[ChatSession, Depends(session_from_path)]


@router.post("", status_code=201, response_model=SessionOut, responses={422: {"model": ErrorBody}})
async def create_session(body: SessionCreate, user: CurrentUser, db: DbSession,
                         services: ServicesDep) -> dict[str, Any]:
    """Start a session, optionally bound to a stored or inline workflow."""
    workflow = await workflow_service.resolve(db, user_id=user.id, workflow_id=body.workflow_id,
                                              inline=body.workflow, rules=services.spec_rules())
    workflow_id = workflow.id if workflow else None
    row = await session_service.create(db, user_id=user.id, name=body.name, workflow_id=workflow_id)
    return session_out(row)


@router.get("", response_model=ListOf[SessionOut])
async def list_sessions(user: CurrentUser, db: DbSession, page: Pagination) -> dict[str, Any]:
    """The caller's sessions."""
    return list_of(await session_service.list_sessions(db, user_id=user.id, page=page), session_out)


@router.get("/{session_id}", response_model=SessionOut, responses=NOT_FOUND)
async def get_session(chat: SessionFromPath) -> dict[str, Any]:
    """One session."""
    return session_out(chat)


@router.patch("/{session_id}", response_model=SessionOut, responses=NOT_FOUND)
async def update_session(chat: SessionFromPath, body: SessionUpdate, user: CurrentUser,
                         db: DbSession) -> dict[str, Any]:
    """Rename a session or bind it to another workflow."""
    changes = body.model_dump(exclude_unset=True)
    if changes.get("workflow_id") is not None:
        await workflow_service.get_or_raise(db, user_id=user.id, workflow_id=changes["workflow_id"])
    return session_out(await session_service.update(db, row=chat, changes=changes))


@router.delete("/{session_id}", status_code=204, response_class=Response, responses={**NOT_FOUND, **BUSY})
async def delete_session(chat: SessionFromPath, db: DbSession) -> Response:
    """Delete a session with its messages and runs."""
    await session_service.delete(db, row=chat)
    return Response(status_code=204)


@router.get("/{session_id}/messages", response_model=ListOf[MessageOut], responses=NOT_FOUND)
async def list_messages(session_id: str, user: CurrentUser, services: ServicesDep, page: Pagination) -> Response:
    """The session's history."""
    # The hot read path: served from the message cache without a database session when it can be, and
    # the rendered JSON is sent as it is (no response_model re-validation).
    rendered = await session_service.owned_messages_json(services.db, user_id=user.id, session_id=session_id,
                                                         page=page)
    return Response(message_list_json(rendered), media_type="application/json")


@router.post("/{session_id}/messages", status_code=202, response_model=PostedMessage,
             responses={**NOT_FOUND, **BUSY, 200: {"model": PostedMessage, "description": "With ?wait=true"},
                        422: {"model": ErrorBody}, **OVER_QUOTA})
async def post_message(chat: SessionFromPath, body: MessageCreate, user: CurrentUser, stream_slot: StreamSlot,
                       db: DbSession, services: ServicesDep, request: Request,
                       wait: Annotated[bool, Query(description="Answer when the run has ended")] = False,
                       accept: Annotated[str | None, Header(include_in_schema=False)] = None) -> Any:
    """Send a message: starts a run in the background (202), waits for it, or streams its events."""
    workflow = await workflow_service.resolve(db, user_id=user.id, workflow_id=body.workflow_id,
                                              inline=body.workflow, rules=services.spec_rules())
    workflow_id = workflow.id if workflow is not None else run_service.session_workflow_id(chat)
    message, run = await services.runs.submit(db, user_id=user.id, session_id=chat.id, content=body.content,
                                              workflow_id=workflow_id, if_busy=body.if_busy)
    admission.leave(request)  # what follows only waits for the run
    if wants_event_stream(accept):
        return event_stream_response(run_events(services.db, services.runs, run.id, 0),
                                     headers={"X-Run-Id": run.id, "X-Message-Id": message.id})
    if not wait:
        return json_response({"message": message_out(message), "run": run_out(run)}, status=202)
    finished = await services.runs.wait(run.id)
    reply = await services.db.read_in_thread(lambda connection: run_service.reply_of(connection, finished))
    return json_response({"message": message_out(message), "run": run_out(finished),
                          "reply": message_out(reply) if reply else None}, status=200)


@router.delete("/{session_id}/messages", status_code=204, response_class=Response, responses={**NOT_FOUND, **BUSY})
async def clear_messages(chat: SessionFromPath, db: DbSession) -> Response:
    """Clear the session's history."""
    await session_service.clear_messages(db, row=chat)
    return Response(status_code=204)


@router.get("/{session_id}/runs", response_model=ListOf[RunOut], responses=NOT_FOUND)
async def list_runs(chat: SessionFromPath, db: DbSession, page: Pagination) -> dict[str, Any]:
    """The session's runs."""
    return list_of(await run_service.list_for_session(db, session_id=chat.id, page=page), run_out)


@router.post("/{session_id}/publish", status_code=201, response_model=GalleryItemOut, responses=NOT_FOUND)
async def publish_session(chat: SessionFromPath, body: PublishRequest, user: CurrentUser,
                          db: DbSession) -> dict[str, Any]:
    """Publish a redacted snapshot of the session to the gallery."""
    return gallery_out(await gallery_service.publish(db, user_id=user.id, chat=chat, tags=body.tags))
