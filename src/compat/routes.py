"""/api: the seed-era endpoints (AutoGen-assistant clients), thin translations onto the v1 services.

Answers and errors leave in the seed envelope (`envelope`, `routing.SeedRoute`). A run that ends failed or
cancelled is a valid request: HTTP 200 with `status: false`, `message: "<error.type>: <error.message>"` and the
run under `data` (and `metadata`).

`user_id` in a payload names the acting user in auth mode `local` (a user id `usr_...` if it exists, else a
user name, created if new); in `apikey` mode it must be the caller's own id or name, else 404.
"""

from __future__ import annotations

from typing import Annotated, Any

from autobots.compat import envelope
from autobots.compat import service as compat_service
from autobots.compat.routing import SeedDb, SeedRoute
from autobots.compat.schemas import (
    SeedClearRequest,
    SeedDeleteMessageRequest,
    SeedGallery,
    SeedGalleryItem,
    SeedMessageRequest,
    SeedMessages,
    SeedPublishRequest,
    SeedReply,
    SeedSessionRequest,
    SeedSessions,
    seed_message,
    seed_reply,
    seed_session,
)
from autobots.db.tables import User
from autobots.runs import service as run_service
from autobots.users import service as user_service
from autobots.web import admission
from autobots.web.auth import CurrentUser
from autobots.web.deps import Services, ServicesDep
from autobots.web.schemas import gallery_out
from fastapi import APIRouter, Query, Request
from sqlmodel.ext.asyncio.session import AsyncSession

router = APIRouter(prefix="/api", tags=["seed-era compatibility"], route_class=SeedRoute,
                   responses=envelope.ERRORS)
OptionalUserId = Annotated[str | None, Query(max_length=200)]


async def _acting_user(db: AsyncSession, caller: User, user_id: str | None, services: Services) -> User:
    return await user_service.acting_user(db, caller=caller, user_id=user_id,
                                          local_mode=services.settings.auth_mode == "local")


@router.post("/messages", response_model=SeedReply)
async def post_message(body: SeedMessageRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep,
                       request: Request) -> Any:
    """Run a message through the (translated) flow_config in the session and answer with the reply."""
    user = await _acting_user(db, caller, body.message.user_id, services)
    message, run = await compat_service.submit_message(db, user_id=user.id, message=body.message,
                                                       flow=body.flow_config, settings=services.settings,
                                                       rules=services.spec_rules(), runs=services.runs)
    admission.leave(request)  # what follows only waits for the run
    finished = await services.runs.wait(run.id)
    reply = await services.db.read_in_thread(lambda connection: run_service.reply_of(connection, finished))
    return seed_reply(message, finished, reply)


@router.get("/messages", response_model=SeedMessages)
async def list_messages(caller: CurrentUser, db: SeedDb, services: ServicesDep,
                        session_id: Annotated[str, Query(max_length=200)], user_id: OptionalUserId = None) -> Any:
    """The session's messages, oldest first."""
    user = await _acting_user(db, caller, user_id, services)
    messages = await compat_service.list_messages(db, user_id=user.id, reference=session_id)
    return envelope.ok("messages retrieved", [seed_message(row) for row in messages])


@router.post("/messages/delete", response_model=SeedMessages)
async def delete_message(body: SeedDeleteMessageRequest, caller: CurrentUser, db: SeedDb,
                         services: ServicesDep) -> Any:
    """Delete one of the user's messages; answers with what remains of its session. Idempotent."""
    user = await _acting_user(db, caller, body.user_id, services)
    deleted, remaining = await compat_service.delete_message(db, user_id=user.id, message_id=body.msg_id,
                                                             reference=body.session_id)
    return envelope.ok("message deleted" if deleted else "no such message: nothing deleted",
                       [seed_message(row) for row in remaining])


@router.get("/sessions", response_model=SeedSessions)
async def list_sessions(caller: CurrentUser, db: SeedDb, services: ServicesDep,
                        user_id: OptionalUserId = None) -> Any:
    """The user's sessions, newest first (up to 100)."""
    user = await _acting_user(db, caller, user_id, services)
    listing = await compat_service.list_sessions(db, user_id=user.id)
    return envelope.ok("sessions retrieved", [seed_session(row, workflow) for row, workflow in listing])


@router.post("/sessions", response_model=SeedSessions)
async def create_session(body: SeedSessionRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Create a session (with the translated flow_config); answers with the user's sessions, the new one first."""
    user = await _acting_user(db, caller, body.user_id or body.session.user_id, services)
    listing = await compat_service.create_session(db, user_id=user.id, session=body.session,
                                                  settings=services.settings, rules=services.spec_rules())
    return envelope.ok("session created", [seed_session(row, workflow) for row, workflow in listing])


@router.post("/sessions/publish", response_model=SeedGalleryItem)
async def publish_session(body: SeedPublishRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Publish the session to the gallery (a redacted snapshot)."""
    user = await _acting_user(db, caller, body.user_id or body.session.user_id, services)
    item = await compat_service.publish_session(db, user_id=user.id, session=body.session, tags=body.tags)
    return envelope.ok("session published", gallery_out(item))


@router.get("/gallery", response_model=SeedGallery)
async def get_gallery(caller: CurrentUser, db: SeedDb,
                      gallery_id: Annotated[str | None, Query(max_length=200)] = None) -> Any:
    """One gallery item (as a one-item list), or the newest 100."""
    items = await compat_service.gallery_items(db, gallery_id=gallery_id)
    return envelope.ok("gallery retrieved", [gallery_out(item) for item in items])


@router.post("/cleardb", response_model=SeedMessages)
async def clear_session(body: SeedClearRequest, caller: CurrentUser, db: SeedDb, services: ServicesDep) -> Any:
    """Clear the session's messages. Idempotent: a session that is not there has nothing to clear."""
    user = await _acting_user(db, caller, body.user_id, services)
    cleared = await compat_service.clear_session(db, user_id=user.id, reference=body.session_id)
    return envelope.ok("messages cleared" if cleared else "no such session: nothing to clear", [])
