"""The SQL of sessions and their messages: one repository per table, and the read path's one-hop query."""

from __future__ import annotations

from typing import Any

from autobots.db.repositories import Page, PageQuery, Repository
from autobots.db.tables import ChatSession, Message, Run, RunEvent
from sqlalchemy import Connection, Integer, Text, bindparam, cast, delete
from sqlmodel import select

_OWNED_SESSION = select(ChatSession).where(ChatSession.id == bindparam("session_id"),  # type: ignore[arg-type]
                                           ChatSession.user_id == bindparam("user_id"))


class SessionRepository(Repository[ChatSession]):
    model = ChatSession

    async def get_owned(self, id: str, user_id: str) -> ChatSession | None:
        """The user's session. Every request about a session reads it this way: the statement is built once."""
        return (await self.db.exec(_OWNED_SESSION, params={"session_id": id, "user_id": user_id})).first()

    async def get_by_external_id(self, external_id: str, user_id: str) -> ChatSession | None:
        statement = select(ChatSession).where(ChatSession.user_id == user_id, ChatSession.external_id == external_id)
        return (await self.db.exec(statement)).first()

    async def list_owned(self, user_id: str, page: PageQuery) -> Page[ChatSession]:
        return await self.paginate(page, filters=[ChatSession.user_id == user_id])

    async def delete_cascade(self, session_row: ChatSession) -> None:
        """Remove the session with its messages, runs and run events."""
        run_ids = Run.__table__.select().with_only_columns(Run.id).where(Run.session_id == session_row.id)  # type: ignore[attr-defined]
        await self.db.exec(delete(RunEvent).where(RunEvent.run_id.in_(run_ids)))  # type: ignore[attr-defined,call-overload]
        await self.db.exec(delete(Message).where(Message.session_id == session_row.id))  # type: ignore[call-overload]
        await self.db.exec(delete(Run).where(Run.session_id == session_row.id))  # type: ignore[call-overload]
        await self.delete(session_row)


class MessageRepository(Repository[Message]):
    model = Message

    async def get_owned(self, id: str, user_id: str) -> Message | None:
        return await self.get(id, filters=[Message.user_id == user_id])

    async def list_for_session(self, session_id: str, page: PageQuery) -> Page[Message]:
        return await self.paginate(page, filters=[Message.session_id == session_id])

    async def history(self, session_id: str, *, limit: int = 200) -> list[Message]:
        """The last `limit` messages of a session, oldest first."""
        statement = (
            select(Message).where(Message.session_id == session_id).order_by(Message.pk.desc()).limit(limit)  # type: ignore[union-attr]
        )
        rows = list((await self.db.exec(statement)).all())
        rows.reverse()
        return rows

    async def clear_session(self, session_id: str) -> int:
        result = await self.db.exec(delete(Message).where(Message.session_id == session_id))  # type: ignore[call-overload]
        return int(result.rowcount or 0)


def owned_raw_messages(connection: Connection, *, user_id: str, session_id: str, limit: int) -> list[Any] | None:
    """Up to `limit` of the session's messages, oldest first, as tuples `(pk, id, session_id, run_id, role,
    content, meta, created_at)` with `meta` as its stored JSON text (the read path serves it as it is); None
    when the session is not the user's. One read on a thread's connection (`Database.read_in_thread`)."""
    owner = connection.execute(_SESSION_OWNER, {"session_id": session_id}).scalar()
    if owner != user_id:
        return None
    return list(connection.execute(_RAW_MESSAGES, {"session_id": session_id, "limit": limit}).all())


# The read path's statements, built once with their values bound at execution (building one costs more than
# running it).
_SESSION_OWNER = select(ChatSession.user_id).where(ChatSession.id == bindparam("session_id"))  # type: ignore[arg-type]
_RAW_MESSAGES = (select(Message.pk, Message.id, Message.session_id, Message.run_id, Message.role,  # type: ignore[call-overload]
                        Message.content, cast(Message.meta, Text), Message.created_at)
                 .where(Message.session_id == bindparam("session_id"))
                 .order_by(Message.pk)
                 .limit(bindparam("limit", type_=Integer)))
