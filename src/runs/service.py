"""Reads over runs and their events, owner-filtered."""

from __future__ import annotations

from autobots.db.repositories import MessageRepository, Page, PageQuery, RunRepository, WorkflowRepository
from autobots.db.tables import ChatSession, Message, Run, RunEvent, Workflow
from autobots.errors import InvalidRequest, NotFound
from sqlmodel.ext.asyncio.session import AsyncSession


class RunNotFound(NotFound):
    code = "run_not_found"


async def get_or_raise(session: AsyncSession, *, user_id: str, run_id: str) -> Run:
    run = await RunRepository(session).get_owned(run_id, user_id)
    if run is None:
        raise RunNotFound(f"no run with id '{run_id}'", param="run_id")
    return run


async def list_for_session(session: AsyncSession, *, session_id: str, page: PageQuery) -> Page[Run]:
    return await RunRepository(session).list_for_session(session_id, page)


async def list_events(session: AsyncSession, *, run_id: str, starting_after: int = 0) -> list[RunEvent]:
    return await RunRepository(session).events(run_id, starting_after=starting_after)


async def session_workflow_or_raise(session: AsyncSession, *, chat: ChatSession) -> Workflow:
    """The workflow a session runs with; a session without one cannot take messages."""
    if chat.workflow_id is None:
        raise InvalidRequest("this session has no workflow: pass workflow_id or an inline workflow",
                             param="workflow_id", code="workflow_required", status=422)
    row = await WorkflowRepository(session).get(chat.workflow_id)
    if row is None or row.deleted_at is not None:
        raise InvalidRequest("the session's workflow was deleted: pass workflow_id or an inline workflow",
                             param="workflow_id", code="workflow_deleted", status=422)
    return row


async def reply_of(session: AsyncSession, *, run: Run) -> Message | None:
    if run.reply_message_id is None:
        return None
    return await MessageRepository(session).get(run.reply_message_id)
