from __future__ import annotations

from typing import Any

from autobots.db.message_cache import mark_dirty
from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import ChatSession, Message
from sqlalchemy import Connection, Text, cast, delete
from sqlmodel import select


def _raw_messages(session_id: str, limit: int) -> Any:
    return (select(Message.pk, Message.id, Message.session_id, Message.run_id, Message.role, Message.content,
                   cast(Message.meta, Text), Message.created_at)
            .where(Message.session_id == session_id)
            .order_by(Message.pk)  # type: ignore[arg-type]
            .limit(limit))


def owned_raw_messages(connection: Connection, *, user_id: str, session_id: str, limit: int) -> list[Any] | None:
    """Up to `limit` of the session's messages, oldest first, as tuples `(pk, id, session_id, run_id, role,
    content, meta, created_at)` with `meta` as its stored JSON text (the read path serves it as it is); None
    when the session is not the user's. One read on a thread's connection (`Database.read_in_thread`)."""
    owner = connection.execute(select(ChatSession.user_id).where(ChatSession.id == session_id)).scalar()
    if owner != user_id:
        return None
    return list(connection.execute(_raw_messages(session_id, limit)).all())


class MessageRepository(Repository[Message]):
    model = Message

    async def get_owned(self, id: str, user_id: str) -> Message | None:
        return await self.get(id, filters=[Message.user_id == user_id])

    async def list_for_session(self, session_id: str, page: PageQuery) -> Page[Message]:
        return await self.paginate(page, filters=[Message.session_id == session_id])

    async def history(self, session_id: str, *, limit: int = 200) -> list[Message]:
        """The last `limit` messages of a session, oldest first (for replay into a team)."""
        statement = (
            select(Message).where(Message.session_id == session_id).order_by(Message.pk.desc()).limit(limit)  # type: ignore[union-attr]
        )
        rows = list((await self.session.exec(statement)).all())
        rows.reverse()
        return rows

    async def clear_session(self, session_id: str) -> int:
        mark_dirty(self.session, session_id)
        result = await self.session.exec(delete(Message).where(Message.session_id == session_id))  # type: ignore[call-overload]
        return int(result.rowcount or 0)
