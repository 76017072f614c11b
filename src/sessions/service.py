"""Sessions and messages, owner-filtered. Services never commit."""

from __future__ import annotations

from autobots.db import Database
from autobots.db.repositories import Page, PageQuery, RunRepository
from autobots.db.tables import ChatSession, Message, new_id, now
from autobots.errors import Conflict, NotFound
from autobots.sessions.message_cache import MAX_MESSAGES, CachedMessage, invalidate_on_commit, message_cache
from autobots.sessions.repository import MessageRepository, SessionRepository, owned_raw_messages
from autobots.sessions.schemas import message_json, message_json_of
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession


class SessionNotFound(NotFound):
    code = "session_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class SessionBusy(Conflict):
    code = "session_busy"


async def create(db: AsyncSession, *, user_id: str, name: str | None, workflow_id: str | None) -> ChatSession:
    row = ChatSession(id=new_id("ses"), user_id=user_id, name=name, workflow_id=workflow_id)
    return await SessionRepository(db).add(row)


async def get_by_reference(db: AsyncSession, *, user_id: str, reference: str) -> ChatSession | None:
    """The user's session by our id, else by the id a seed-era client gave it (`external_id`)."""
    repository = SessionRepository(db)
    return await repository.get_owned(reference, user_id) or await repository.get_by_external_id(reference, user_id)


async def get_or_create_by_reference(db: AsyncSession, *, user_id: str, reference: str, name: str | None,
                                     workflow_id: str | None) -> ChatSession:
    """Find the session a client refers to, or create it under the client's own id.

    Two first requests racing with the same new id both try to insert; the loser's insert fails on the
    unique (user, external_id) constraint inside a savepoint and it reads the winner's row instead.
    """
    found = await get_by_reference(db, user_id=user_id, reference=reference)
    if found is not None:
        return found
    row = ChatSession(id=new_id("ses"), user_id=user_id, name=name, workflow_id=workflow_id, external_id=reference)
    try:
        async with db.begin_nested():
            db.add(row)
            await db.flush()
    except IntegrityError:
        found = await SessionRepository(db).get_by_external_id(reference, user_id)
        if found is None:
            raise
        return found
    return row


async def get_by_reference_or_raise(db: AsyncSession, *, user_id: str, reference: str) -> ChatSession:
    row = await get_by_reference(db, user_id=user_id, reference=reference)
    if row is None:
        raise SessionNotFound(f"no session with id '{reference}'", param="session_id")
    return row


async def ensure_by_reference(db: AsyncSession, *, user_id: str, reference: str | None, name: str | None,
                              workflow_id: str | None) -> ChatSession:
    """The session a client refers to, bound to `workflow_id` when given; created (under the client's id, if it
    gave one) when there is none."""
    if reference is None:
        return await create(db, user_id=user_id, name=name, workflow_id=workflow_id)
    row = await get_or_create_by_reference(db, user_id=user_id, reference=reference, name=name,
                                           workflow_id=workflow_id)
    if workflow_id is not None and row.workflow_id != workflow_id:
        row = await update(db, row=row, changes={"workflow_id": workflow_id})
    return row


async def get_or_raise(db: AsyncSession, *, user_id: str, session_id: str) -> ChatSession:
    row = await SessionRepository(db).get_owned(session_id, user_id)
    if row is None:
        raise SessionNotFound(f"no session with id '{session_id}'", param="session_id")
    return row


async def list_sessions(db: AsyncSession, *, user_id: str, page: PageQuery) -> Page[ChatSession]:
    return await SessionRepository(db).list_owned(user_id, page)


async def update(db: AsyncSession, *, row: ChatSession, changes: dict[str, object]) -> ChatSession:
    for field, value in changes.items():
        setattr(row, field, value)
    row.updated_at = now()
    db.add(row)
    await db.flush()
    return row


async def _ensure_idle(db: AsyncSession, session_id: str) -> None:
    if await RunRepository(db).active_for_session(session_id):
        raise SessionBusy(f"session '{session_id}' has an active run; cancel it first")


async def delete(db: AsyncSession, *, row: ChatSession) -> None:
    await _ensure_idle(db, row.id)
    await SessionRepository(db).delete_cascade(row)  # the message cache sees the row go and forgets it


async def list_messages(db: AsyncSession, *, session_id: str, page: PageQuery) -> Page[Message]:
    return await MessageRepository(db).list_for_session(session_id, page)


async def list_history(db: AsyncSession, *, session_id: str, limit: int) -> list[Message]:
    """The session's last `limit` messages, oldest first."""
    return await MessageRepository(db).history(session_id, limit=limit)


async def owned_messages_json(db: Database, *, user_id: str, session_id: str,
                              page: PageQuery) -> Page[CachedMessage]:
    """The page of the user's session's messages rendered as JSON (SessionNotFound unless the user owns it).
    When the cache knows the owner and holds the messages, no database session is opened at all."""
    if message_cache.owner(session_id) == user_id:
        messages = message_cache.get(session_id)
        if messages is not None:
            return page_of(messages, page)
    version = message_cache.version(session_id)
    rows = await db.read_in_thread(lambda connection: owned_raw_messages(
        connection, user_id=user_id, session_id=session_id, limit=MAX_MESSAGES + 1))
    if rows is None:
        raise SessionNotFound(f"no session with id '{session_id}'", param="session_id")
    message_cache.remember_owner(session_id, user_id)
    if len(rows) > MAX_MESSAGES:
        async with db.read_session() as db:
            return await _render_page_from_database(db, session_id=session_id, page=page)
    messages = [CachedMessage(pk=row[0], id=row[1], json=message_json(*row[1:])) for row in rows]
    message_cache.put(session_id, version, messages)
    return page_of(messages, page)


async def _render_page_from_database(db: AsyncSession, *, session_id: str,
                                     page: PageQuery) -> Page[CachedMessage]:
    listed = await MessageRepository(db).list_for_session(session_id, page)
    rendered = [CachedMessage(pk=m.pk or 0, id=m.id, json=message_json_of(m)) for m in listed.rows]
    return Page(rows=rendered, has_more=listed.has_more)


def page_of(messages: list[CachedMessage], page: PageQuery) -> Page[CachedMessage]:
    """The page of `messages` (oldest first) that `Repository.paginate` would return for `page`."""
    low, high = 0, len(messages)
    for cursor, forward in ((page.after, True), (page.before, False)):
        if cursor is None:
            continue
        index = _position(messages, cursor)
        if index is None:
            return Page(rows=[], has_more=False)
        if (page.order == "asc") == forward:
            low = max(low, index + 1)
        else:
            high = min(high, index)
    window = messages[low:high]
    reverse = page.before is not None and page.after is None
    descending = (page.order == "desc") != reverse
    ordered = list(reversed(window)) if descending else window
    rows = ordered[: page.limit]
    has_more = len(ordered) > page.limit
    if reverse:
        rows.reverse()
    return Page(rows=rows, has_more=has_more)


def _position(messages: list[CachedMessage], message_id: str) -> int | None:
    for index, message in enumerate(messages):
        if message.id == message_id:
            return index
    return None


async def clear_messages(db: AsyncSession, *, row: ChatSession) -> int:
    await _ensure_idle(db, row.id)
    invalidate_on_commit(db, row.id)  # a bulk DELETE: the ORM does not see which messages went
    return await MessageRepository(db).clear_session(row.id)


async def get_message(db: AsyncSession, *, user_id: str, message_id: str) -> Message | None:
    return await MessageRepository(db).get_owned(message_id, user_id)


async def get_message_or_raise(db: AsyncSession, *, user_id: str, message_id: str) -> Message:
    message = await get_message(db, user_id=user_id, message_id=message_id)
    if message is None:
        raise MessageNotFound(f"no message with id '{message_id}'", param="message_id")
    return message


async def delete_message(db: AsyncSession, *, message: Message) -> None:
    await MessageRepository(db).delete(message)
