"""Reads over runs and their events, owner-filtered."""

from __future__ import annotations

from autobots.db.repositories import PUBLIC_ONLY, Page, PageQuery, RunRepository, fetch_one
from autobots.db.tables import ChatSession, Message, Run, RunEvent
from autobots.errors import InvalidRequest, NotFound
from sqlalchemy import Connection
from sqlmodel.ext.asyncio.session import AsyncSession


class RunNotFound(NotFound):
    code = "run_not_found"


async def get_or_raise(db: AsyncSession, *, user_id: str, run_id: str) -> Run:
    run = await RunRepository(db).get_owned(run_id, user_id)
    if run is None:
        raise RunNotFound(f"no run with id '{run_id}'", param="run_id")
    return run


def public_run(connection: Connection, run_id: str) -> Run | None:
    """A run without its executor-only fields, in one read on a thread's connection."""
    return fetch_one(connection, Run, Run.id == run_id, options=PUBLIC_ONLY)


async def list_for_session(db: AsyncSession, *, session_id: str, page: PageQuery) -> Page[Run]:
    return await RunRepository(db).list_for_session(session_id, page)


async def list_events(db: AsyncSession, *, run_id: str, starting_after: int = 0) -> list[RunEvent]:
    return await RunRepository(db).events(run_id, starting_after=starting_after)


def session_workflow_id(chat: ChatSession) -> str:
    """The workflow a session runs with; a session without one cannot take messages. (Whether that workflow
    still exists is checked when the run is submitted.)"""
    if chat.workflow_id is None:
        raise InvalidRequest("this session has no workflow: pass workflow_id or an inline workflow",
                             param="workflow_id", code="workflow_required", status=422)
    return chat.workflow_id


def reply_of(connection: Connection, run: Run) -> Message | None:
    """The run's reply message, in one read on a thread's connection (`Database.read_in_thread`)."""
    if run.reply_message_id is None:
        return None
    return fetch_one(connection, Message, Message.id == run.reply_message_id)
