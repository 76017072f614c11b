"""The seed-era operations, composed from the v1 services: a `flow_config` is stored as a workflow, a session
is found by our id or the client's own (and created under it), listings come with their workflows. Services
never commit."""

from __future__ import annotations

from autobots import models
from autobots.compat import translator
from autobots.compat.flow_config import AgentWorkFlowConfig
from autobots.compat.schemas import SeedMessageIn, SeedSessionIn
from autobots.config import Settings, read_secret_env
from autobots.db.repositories import PageQuery
from autobots.db.tables import ChatSession, GalleryItem, Message, Run, Workflow
from autobots.errors import InvalidRequest, InvalidWorkflowSpec
from autobots.gallery import service as gallery_service
from autobots.runs import RunManager
from autobots.runs import service as run_service
from autobots.sessions import service as session_service
from autobots.workflows import service as workflow_service
from autobots.workflows.service import ServerRules
from sqlmodel.ext.asyncio.session import AsyncSession

ALL = PageQuery(limit=1000, order="asc")
NEWEST = PageQuery(limit=100, order="desc")

SessionListing = list[tuple[ChatSession, Workflow | None]]


async def store_flow(db: AsyncSession, *, user_id: str, flow: AgentWorkFlowConfig | None,
                     settings: Settings, rules: ServerRules, at: str, reference: str | None = None) -> Workflow | None:
    """Translate, validate (errors name the seed path) and store a flow_config as a workflow, reusing the
    workflow of the session the client names when the spec is unchanged."""
    if flow is None:
        return None
    translation = translator.to_workflow(flow, default_model=models.resolve_default_model(settings),
                                         openai_key_available=read_secret_env("OPENAI_API_KEY") is not None, at=at)
    spec, errors = await workflow_service.check(translation.spec, rules)
    if spec is None:
        raise InvalidWorkflowSpec(translation.seed_errors(errors))
    chat = await session_service.get_by_reference(db, user_id=user_id, reference=reference) if reference else None
    current = None
    if chat is not None and chat.workflow_id:
        current = await workflow_service.get_or_none(db, user_id=user_id, workflow_id=chat.workflow_id)
    return await workflow_service.create_or_reuse(db, user_id=user_id, spec=spec, candidate=current)


async def submit_message(db: AsyncSession, *, user_id: str, message: SeedMessageIn,
                         flow: AgentWorkFlowConfig | None, settings: Settings, rules: ServerRules,
                         runs: RunManager) -> tuple[Message, Run]:
    """Store the flow_config, find or create the session, and submit the message's run."""
    workflow = await store_flow(db, user_id=user_id, flow=flow, settings=settings, rules=rules, at="flow_config",
                                reference=message.session_id)
    chat = await session_service.ensure_by_reference(db, user_id=user_id, reference=message.session_id,
                                                     name=flow.name if flow else None,
                                                     workflow_id=workflow.id if workflow else None)
    workflow_id = workflow.id if workflow is not None else run_service.session_workflow_id(chat)
    return await runs.submit(db, user_id=user_id, session_id=chat.id, content=message.content, workflow_id=workflow_id)


async def list_messages(db: AsyncSession, *, user_id: str, reference: str) -> list[Message]:
    """The messages of the session the client names, oldest first."""
    chat = await session_service.get_by_reference_or_raise(db, user_id=user_id, reference=reference)
    return await _messages(db, session_id=chat.id)


async def delete_message(db: AsyncSession, *, user_id: str, message_id: str,
                         reference: str | None) -> tuple[bool, list[Message]]:
    """Delete one of the user's messages; whether it was deleted, and what remains of its session. A message
    that is not there (or not in the session named) is already deleted, as the seed backend had it."""
    message = await session_service.get_message(db, user_id=user_id, message_id=message_id)
    chat = await session_service.get_by_reference(db, user_id=user_id, reference=reference) if reference else None
    if message is None or (chat is not None and chat.id != message.session_id):
        return False, (await _messages(db, session_id=chat.id) if chat is not None else [])
    await session_service.delete_message(db, message=message)
    return True, await _messages(db, session_id=message.session_id)


async def list_sessions(db: AsyncSession, *, user_id: str) -> SessionListing:
    """The user's newest sessions, each with its workflow (None when it has none, or it was deleted)."""
    page = await session_service.list_sessions(db, user_id=user_id, page=NEWEST)
    workflow_ids = {row.workflow_id for row in page.rows if row.workflow_id}
    workflows = await workflow_service.list_by_ids(db, user_id=user_id, workflow_ids=workflow_ids)
    return [(row, workflows.get(row.workflow_id) if row.workflow_id else None) for row in page.rows]


async def create_session(db: AsyncSession, *, user_id: str, session: SeedSessionIn, settings: Settings,
                         rules: ServerRules) -> SessionListing:
    """Create the session (or find the one the client names) with its translated flow_config; the user's
    sessions, that one first."""
    workflow = await store_flow(db, user_id=user_id, flow=session.flow_config, settings=settings, rules=rules,
                                at="session.flow_config")
    chat = await session_service.ensure_by_reference(db, user_id=user_id, reference=session.reference,
                                                     name=session.name, workflow_id=workflow.id if workflow else None)
    listing = await list_sessions(db, user_id=user_id)
    created = [entry for entry in listing if entry[0].id == chat.id] or [(chat, workflow)]
    return created + [entry for entry in listing if entry[0].id != chat.id]


async def publish_session(db: AsyncSession, *, user_id: str, session: SeedSessionIn, tags: list[str]) -> GalleryItem:
    """Publish the session the client names to the gallery."""
    if not session.reference:
        raise InvalidRequest("session.session_id: Field required", param="session.session_id", status=422)
    chat = await session_service.get_by_reference_or_raise(db, user_id=user_id, reference=session.reference)
    return await gallery_service.publish(db, user_id=user_id, chat=chat, tags=tags)


async def gallery_items(db: AsyncSession, *, gallery_id: str | None) -> list[GalleryItem]:
    """One gallery item, or the newest 100."""
    if gallery_id:
        return [await gallery_service.get_or_raise(db, gallery_id=gallery_id)]
    return (await gallery_service.list_items(db, page=NEWEST, tag=None)).rows


async def clear_session(db: AsyncSession, *, user_id: str, reference: str) -> bool:
    """Clear the messages of the session the client names; False when there is no such session (nothing to
    clear: the seed backend's clients start by clearing a session that does not exist yet)."""
    chat = await session_service.get_by_reference(db, user_id=user_id, reference=reference)
    if chat is None:
        return False
    await session_service.clear_messages(db, row=chat)
    return True


async def _messages(db: AsyncSession, *, session_id: str) -> list[Message]:
    return (await session_service.list_messages(db, session_id=session_id, page=ALL)).rows
