"""Sessions and messages, owner-filtered. Services never commit."""

from __future__ import annotations

from autobots.db.repositories import (
    MessageRepository,
    Page,
    PageQuery,
    RunRepository,
    SessionRepository,
)
from autobots.db.tables import ChatSession, Message, new_id, now
from autobots.errors import Conflict, NotFound
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession


class SessionNotFound(NotFound):
    code = "session_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class SessionBusy(Conflict):
    code = "session_busy"


async def create(session: AsyncSession, *, user_id: str, name: str | None, workflow_id: str | None) -> ChatSession:
    row = ChatSession(id=new_id("ses"), user_id=user_id, name=name, workflow_id=workflow_id)
    return await SessionRepository(session).add(row)


async def get_by_reference(session: AsyncSession, *, user_id: str, reference: str) -> ChatSession | None:
    """The user's session by our id, else by the id a seed-era client gave it (`external_id`)."""
    repository = SessionRepository(session)
    return await repository.get_owned(reference, user_id) or await repository.get_by_external_id(reference, user_id)


async def get_or_create_by_reference(session: AsyncSession, *, user_id: str, reference: str, name: str | None,
                                     workflow_id: str | None) -> ChatSession:
    """Find the session a client refers to, or create it under the client's own id.

    Two first requests racing with the same new id both try to insert; the loser's insert fails on the
    unique (user, external_id) constraint inside a savepoint and it reads the winner's row instead.
    """
    found = await get_by_reference(session, user_id=user_id, reference=reference)
    if found is not None:
        return found
    row = ChatSession(id=new_id("ses"), user_id=user_id, name=name, workflow_id=workflow_id, external_id=reference)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        found = await SessionRepository(session).get_by_external_id(reference, user_id)
        if found is None:
            raise
        return found
    return row


async def get_or_raise(session: AsyncSession, *, user_id: str, session_id: str) -> ChatSession:
    row = await SessionRepository(session).get_owned(session_id, user_id)
    if row is None:
        raise SessionNotFound(f"no session with id '{session_id}'", param="session_id")
    return row


async def list_sessions(session: AsyncSession, *, user_id: str, page: PageQuery) -> Page[ChatSession]:
    return await SessionRepository(session).list_owned(user_id, page)


async def update(session: AsyncSession, *, row: ChatSession, changes: dict[str, object]) -> ChatSession:
    for field, value in changes.items():
        setattr(row, field, value)
    row.updated_at = now()
    session.add(row)
    await session.flush()
    return row


async def _ensure_idle(session: AsyncSession, session_id: str) -> None:
    if await RunRepository(session).active_for_session(session_id):
        raise SessionBusy(f"session '{session_id}' has an active run; cancel it first")


async def delete(session: AsyncSession, *, row: ChatSession) -> None:
    await _ensure_idle(session, row.id)
    await SessionRepository(session).delete_cascade(row)


async def list_messages(session: AsyncSession, *, session_id: str, page: PageQuery) -> Page[Message]:
    return await MessageRepository(session).list_for_session(session_id, page)


async def clear_messages(session: AsyncSession, *, row: ChatSession) -> int:
    await _ensure_idle(session, row.id)
    return await MessageRepository(session).clear_session(row.id)


async def get_message_or_raise(session: AsyncSession, *, user_id: str, message_id: str) -> Message:
    message = await MessageRepository(session).get_owned(message_id, user_id)
    if message is None:
        raise MessageNotFound(f"no message with id '{message_id}'", param="message_id")
    return message


async def delete_message(session: AsyncSession, *, message: Message) -> None:
    await MessageRepository(session).delete(message)
