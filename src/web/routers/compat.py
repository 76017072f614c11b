"""/api: the seed-era endpoints (AutoGen-assistant clients), thin translations onto the v1 services.

Envelope: HTTP 200 `{"status": true, "message": str, "data"?: ...}`. Every error leaves as
`{"status": false, "message": "<path>: <problem>", "data": {type, code, param, errors?}}` with its HTTP
status (422 invalid body or flow_config, 401 no/invalid key, 404 unknown or foreign id, 409 busy
session); `SeedRoute` converts them and rolls the request's unit of work back first.

A run that ends failed or cancelled is a valid request: HTTP 200 with `status: false`,
`message: "<error.type>: <error.message>"` and the run under `data` (and `metadata`).

`user_id` in a payload names the acting user in auth mode `local` (a user id `usr_...` if it exists,
else a user name, created if new); in `apikey` mode it must be the caller's own id or name, else 404.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from autobots import models
from autobots.config import read_secret_env
from autobots.db.repositories import PageQuery
from autobots.db.tables import ChatSession, Message, User, Workflow
from autobots.errors import AutobotsError, InvalidRequest, InvalidWorkflowSpec, NotFound
from autobots.gallery import service as gallery_service
from autobots.runs import service as run_service
from autobots.sessions import service as session_service
from autobots.users import service as user_service
from autobots.web import admission
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, Services, ServicesDep
from autobots.web.errors import body_parse_error
from autobots.web.schemas import GalleryItemOut, MessageOut, PostedMessage, gallery_out, message_out, run_out
from autobots.workflows import seed
from autobots.workflows import service as workflow_service
from autobots.workflows.seed import AgentWorkFlowConfig
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.exceptions import HTTPException

ALL = PageQuery(limit=1000, order="asc")
NEWEST = PageQuery(limit=100, order="desc")


class SeedError(BaseModel):
    status: bool = False
    message: str
    data: dict[str, Any] | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": SeedError, "description": text} for status, text in (
        (401, "No or invalid API key"), (404, "Unknown session, message, gallery item or user (or not yours)"),
        (409, "The session has an active run"), (422, "Invalid body or flow_config; the message names the field"))}


def _seed_error(status: int, message: str, **data: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"status": False, "message": message, "data": data})


class SeedRoute(APIRoute):
    """Errors of these routes leave in the seed envelope, after the request's unit of work is rolled back."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def seed_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except AutobotsError as exc:
                await _rollback(request)
                extra = {"errors": exc.errors} if isinstance(exc, InvalidWorkflowSpec) else {}
                response = _seed_error(exc.status, exc.message, type=exc.type, code=exc.code, param=exc.param, **extra)
                response.headers.update(getattr(exc, "headers", None) or {})  # a quota's retry-after
                return response
            except RequestValidationError as exc:
                await _rollback(request)
                return _validation_error(exc)
            except HTTPException as exc:
                await _rollback(request)
                parse_error = body_parse_error(exc)
                if parse_error is not None:
                    return _seed_error(parse_error.status, parse_error.message, type=parse_error.type,
                                       code=parse_error.code, param=None)
                return _seed_error(exc.status_code, str(exc.detail), type="invalid_request_error", code=None,
                                   param=None)

        return seed_handler


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    errors = [{"path": seed.error_path(tuple(e.get("loc", ()))[1:]), "message": str(e.get("msg", "invalid"))}
              for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return _seed_error(422, "the body is not valid JSON", type="invalid_request_error", code="invalid_json",
                           param=None)
    first = errors[0] if errors else {"path": "", "message": "invalid request"}
    message = f"{first['path']}: {first['message']}" if first["path"] else first["message"]
    return _seed_error(422, message, type="invalid_request_error", code="invalid_value",
                       param=first["path"] or None, errors=errors)


async def _rollback(request: Request) -> None:
    db: AsyncSession | None = getattr(request.state, "seed_db", None)
    if db is not None:
        await db.rollback()


async def seed_db(request: Request, db: DbSession) -> AsyncSession:
    """The request's unit of work, remembered so that `SeedRoute` can roll it back on an error."""
    request.state.seed_db = db
    return db


SeedDb = Annotated[AsyncSession, Depends(seed_db)]
router = APIRouter(prefix="/api", tags=["seed-era compatibility"], route_class=SeedRoute, responses=ERRORS)


# -- bodies and shapes ---------------------------------------------------------------------------------------------

class _Seed(BaseModel):
    model_config = ConfigDict(extra="allow")


UserId = Annotated[str | None, Field(None, max_length=200, description="The acting user (see module notes)")]


class SeedMessageIn(_Seed):
    user_id: UserId = None
    role: str = "user"
    content: str = Field(min_length=1, max_length=1_000_000)
    session_id: str | None = Field(None, max_length=200, description="Our ses_ id, or the client's own id")
    msg_id: str | None = Field(None, max_length=200)


class SeedMessageRequest(_Seed):
    message: SeedMessageIn
    flow_config: AgentWorkFlowConfig | None = None


class SeedSessionIn(_Seed):
    user_id: UserId = None
    session_id: str | None = Field(None, max_length=200)
    id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
    flow_config: AgentWorkFlowConfig | None = None


class SeedSessionRequest(_Seed):
    user_id: UserId = None
    session: SeedSessionIn = Field(default_factory=SeedSessionIn)


class SeedPublishRequest(SeedSessionRequest):
    tags: list[str] = Field(default_factory=list, max_length=20)


class SeedDeleteMessageRequest(_Seed):
    user_id: UserId = None
    msg_id: str = Field(max_length=200)
    session_id: str | None = Field(None, max_length=200)


class SeedClearRequest(_Seed):
    user_id: UserId = None
    session_id: str = Field(max_length=200)


class SeedMessageOut(MessageOut):
    msg_id: str
    user_id: str
    timestamp: str


class SeedSessionOut(BaseModel):
    session_id: str
    id: str
    user_id: str
    name: str | None
    flow_config: dict[str, Any] | None
    timestamp: str
    external_id: str | None


class SeedOk(BaseModel):
    status: bool = True
    message: str


class SeedMessages(SeedOk):
    data: list[SeedMessageOut]


class SeedSessions(SeedOk):
    data: list[SeedSessionOut]


class SeedGalleryItem(SeedOk):
    data: GalleryItemOut


class SeedGallery(SeedOk):
    data: list[GalleryItemOut]


class SeedReply(BaseModel):
    status: bool = Field(description="false when the run failed or was cancelled")
    message: str = Field(description="The reply text, or '<error.type>: <error.message>'")
    metadata: dict[str, Any] = Field(description="The reply message, plus usage, cost, start_time, end_time, "
                                                 "run_id, session_id")
    data: PostedMessage


def iso(seconds: int | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z") if seconds is not None else None


def seed_message(row: Message) -> dict[str, Any]:
    return {**message_out(row), "msg_id": row.id, "user_id": row.user_id, "timestamp": iso(row.created_at)}


def seed_session(row: ChatSession, workflow: Workflow | None) -> dict[str, Any]:
    return {"session_id": row.id, "id": row.id, "user_id": row.user_id, "name": row.name,
            "flow_config": workflow.spec if workflow else None, "timestamp": iso(row.created_at),
            "external_id": row.external_id}


# -- lookups the v1 services do not offer (see the report: candidates for the services) -------------------------

class UserNotFound(NotFound):
    code = "user_not_found"


async def acting_user(db: AsyncSession, caller: User, user_id: str | None, services: Services) -> User:
    """The user a seed payload acts as: only the caller outside local mode."""
    if not user_id or user_id in (caller.id, caller.name):
        return caller
    if services.settings.auth_mode != "local":
        raise UserNotFound(f"no user '{user_id}'", param="user_id")
    existing = await user_service.get(db, user_id=user_id) if user_id.startswith("usr_") else None
    return existing or await user_service.get_or_create(db, name=user_id)


async def session_or_raise(db: AsyncSession, *, user_id: str, session_id: str) -> ChatSession:
    row = await session_service.get_by_reference(db, user_id=user_id, reference=session_id)
    if row is None:
        raise session_service.SessionNotFound(f"no session with id '{session_id}'", param="session_id")
    return row


async def ensure_session(db: AsyncSession, *, user_id: str, session_id: str | None, name: str | None,
                         workflow: Workflow | None) -> ChatSession:
    """Find the session (binding it to `workflow` when given), or create it under the client's id."""
    workflow_id = workflow.id if workflow else None
    if session_id is None:
        return await session_service.create(db, user_id=user_id, name=name, workflow_id=workflow_id)
    row = await session_service.get_or_create_by_reference(db, user_id=user_id, reference=session_id, name=name,
                                                           workflow_id=workflow_id)
    if workflow_id is not None and row.workflow_id != workflow_id:
        row = await session_service.update(db, row=row, changes={"workflow_id": workflow_id})
    return row


async def store_flow(db: AsyncSession, *, user_id: str, flow: AgentWorkFlowConfig | None, services: Services,
                     at: str, session_id: str | None = None) -> Workflow | None:
    """Translate, validate (errors name the seed path) and store a flow_config as a workflow, reusing the
    session's current workflow when the spec is unchanged."""
    if flow is None:
        return None
    translation = seed.to_workflow(flow, default_model=models.resolve_default_model(services.settings),
                                   openai_key_available=read_secret_env("OPENAI_API_KEY") is not None, at=at)
    spec, errors = await workflow_service.check(translation.spec, services.spec_rules())
    if spec is None:
        raise InvalidWorkflowSpec(translation.seed_errors(errors))
    chat = await session_service.get_by_reference(db, user_id=user_id, reference=session_id) if session_id else None
    current = None
    if chat is not None and chat.workflow_id:
        current = await workflow_service.get_or_none(db, user_id=user_id, workflow_id=chat.workflow_id)
    return await workflow_service.create_or_reuse(db, user_id=user_id, spec=spec, candidate=current)


async def session_listing(db: AsyncSession, *, user_id: str) -> list[dict[str, Any]]:
    page = await session_service.list_sessions(db, user_id=user_id, page=NEWEST)
    rows = []
    for row in page.rows:
        workflow = None
        if row.workflow_id:
            workflow = await workflow_service.get_or_none(db, user_id=user_id, workflow_id=row.workflow_id)
        rows.append(seed_session(row, workflow))
    return rows


async def message_listing(db: AsyncSession, *, session_id: str) -> list[dict[str, Any]]:
    page = await session_service.list_messages(db, session_id=session_id, page=ALL)
    return [seed_message(row) for row in page.rows]


def reply_envelope(message: Message, run: Any, reply: Message | None) -> dict[str, Any]:
    """The seed reply: text, reply message with run totals as metadata, the v1 objects as data."""
    posted = {"message": message_out(message), "run": run_out(run), "reply": message_out(reply) if reply else None}
    totals = {"usage": posted["run"]["usage"], "cost": run.cost, "start_time": iso(run.started_at),
              "end_time": iso(run.finished_at), "run_id": run.id, "session_id": run.session_id}
    if run.status in ("completed", "incomplete") and reply is not None:  # incomplete: the partial reply
        return {"status": True, "message": reply.content, "metadata": {**posted["reply"], **totals}, "data": posted}
    error = run.error or {"type": run.status, "message": run.stop_reason or f"the run ended {run.status}"}
    return {"status": False, "message": f"{error['type']}: {error['message']}",
            "metadata": {**totals, "run": posted["run"]}, "data": posted}


# -- routes --------------------------------------------------------------------------------------------------------

@router.post("/messages", response_model=SeedReply)
async def post_message(body: SeedMessageRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep,
                       request: Request) -> Any:
    """Run a message through the (translated) flow_config in the session and answer with the reply."""
    user = await acting_user(db, caller, body.message.user_id, services)
    workflow = await store_flow(db, user_id=user.id, flow=body.flow_config, services=services, at="flow_config",
                                session_id=body.message.session_id)
    chat = await ensure_session(db, user_id=user.id, session_id=body.message.session_id,
                                name=body.flow_config.name if body.flow_config else None, workflow=workflow)
    workflow_id = workflow.id if workflow is not None else run_service.session_workflow_id(chat)
    message, run = await services.runs.submit(db, user_id=user.id, session_id=chat.id,
                                              content=body.message.content, workflow_id=workflow_id)
    admission.leave(request)  # what follows only waits for the run
    finished = await services.runs.wait(run.id)
    reply = await services.db.read_in_thread(lambda connection: run_service.reply_of(connection, finished))
    return reply_envelope(message, finished, reply)


@router.get("/messages", response_model=SeedMessages)
async def list_messages(caller: CurrentUser, db: SeedDb, services: ServicesDep,
                        session_id: Annotated[str, Query(max_length=200)],
                        user_id: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    """The session's messages, oldest first."""
    user = await acting_user(db, caller, user_id, services)
    chat = await session_or_raise(db, user_id=user.id, session_id=session_id)
    return {"status": True, "message": "messages retrieved", "data": await message_listing(db, session_id=chat.id)}


@router.post("/messages/delete", response_model=SeedMessages)
async def delete_message(body: SeedDeleteMessageRequest, caller: CurrentUser, db: SeedDb,
                         services: ServicesDep) -> Any:
    """Delete one of the user's messages; answers with what remains of its session. Idempotent, as the seed
    backend was: a message that is not there (or not in that session) is already deleted."""
    user = await acting_user(db, caller, body.user_id, services)
    message = await session_service.get_message(db, user_id=user.id, message_id=body.msg_id)
    chat = await session_service.get_by_reference(db, user_id=user.id, reference=body.session_id) \
        if body.session_id else None
    if message is None or (chat is not None and chat.id != message.session_id):
        remaining = await message_listing(db, session_id=chat.id) if chat is not None else []
        return {"status": True, "message": "no such message: nothing deleted", "data": remaining}
    await session_service.delete_message(db, message=message)
    return {"status": True, "message": "message deleted",
            "data": await message_listing(db, session_id=message.session_id)}


@router.get("/sessions", response_model=SeedSessions)
async def list_sessions(caller: CurrentUser, db: SeedDb, services: ServicesDep,
                        user_id: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    """The user's sessions, newest first (up to 100)."""
    user = await acting_user(db, caller, user_id, services)
    return {"status": True, "message": "sessions retrieved", "data": await session_listing(db, user_id=user.id)}


@router.post("/sessions", response_model=SeedSessions)
async def create_session(body: SeedSessionRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Create a session (with the translated flow_config); answers with the user's sessions, the new one first."""
    user = await acting_user(db, caller, body.user_id or body.session.user_id, services)
    workflow = await store_flow(db, user_id=user.id, flow=body.session.flow_config, services=services,
                                at="session.flow_config")
    chat = await ensure_session(db, user_id=user.id, session_id=body.session.session_id or body.session.id,
                                name=body.session.name, workflow=workflow)
    listing = await session_listing(db, user_id=user.id)
    created = [row for row in listing if row["id"] == chat.id] or [seed_session(chat, workflow)]
    return {"status": True, "message": "session created",
            "data": created + [row for row in listing if row["id"] != chat.id]}


@router.post("/sessions/publish", response_model=SeedGalleryItem)
async def publish_session(body: SeedPublishRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Publish the session to the gallery (a redacted snapshot)."""
    user = await acting_user(db, caller, body.user_id or body.session.user_id, services)
    session_id = body.session.session_id or body.session.id
    if not session_id:
        raise InvalidRequest("session.session_id: Field required", param="session.session_id", status=422)
    chat = await session_or_raise(db, user_id=user.id, session_id=session_id)
    item = await gallery_service.publish(db, user_id=user.id, chat=chat, tags=body.tags)
    return {"status": True, "message": "session published", "data": gallery_out(item)}


@router.get("/gallery", response_model=SeedGallery)
async def get_gallery(caller: CurrentUser, db: SeedDb,
                      gallery_id: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    """One gallery item (as a one-item list), or the newest 100."""
    if gallery_id:
        items = [await gallery_service.get_or_raise(db, gallery_id=gallery_id)]
    else:
        items = (await gallery_service.list_items(db, page=NEWEST, tag=None)).rows
    return {"status": True, "message": "gallery retrieved", "data": [gallery_out(item) for item in items]}


@router.post("/cleardb", response_model=SeedMessages)
async def clear_session(body: SeedClearRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Clear the session's messages. Idempotent, as the seed backend was (its clients start by clearing a
    session that does not exist yet): a session that is not there has nothing to clear."""
    user = await acting_user(db, caller, body.user_id, services)
    chat = await session_service.get_by_reference(db, user_id=user.id, reference=body.session_id)
    if chat is None:
        return {"status": True, "message": "no such session: nothing to clear", "data": []}
    await session_service.clear_messages(db, row=chat)
    return {"status": True, "message": "messages cleared", "data": []}
