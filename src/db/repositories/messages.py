from __future__ import annotations

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import Message
from sqlalchemy import delete
from sqlmodel import select


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
        result = await self.session.exec(delete(Message).where(Message.session_id == session_id))  # type: ignore[call-overload]
        return int(result.rowcount or 0)
