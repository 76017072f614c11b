from __future__ import annotations

from autobots.db.message_cache import mark_deleted, mark_dirty
from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import ChatSession, Message, Run, RunEvent
from sqlalchemy import delete
from sqlmodel import select


class SessionRepository(Repository[ChatSession]):
    model = ChatSession

    async def get_owned(self, id: str, user_id: str) -> ChatSession | None:
        return await self.get(id, filters=[ChatSession.user_id == user_id])

    async def get_by_external_id(self, external_id: str, user_id: str) -> ChatSession | None:
        statement = select(ChatSession).where(ChatSession.user_id == user_id, ChatSession.external_id == external_id)
        return (await self.session.exec(statement)).first()

    async def list_owned(self, user_id: str, page: PageQuery) -> Page[ChatSession]:
        return await self.paginate(page, filters=[ChatSession.user_id == user_id])

    async def delete_cascade(self, session_row: ChatSession) -> None:
        """Remove the session with its messages, runs and run events."""
        mark_dirty(self.session, session_row.id)
        mark_deleted(self.session, session_row.id)
        run_ids = Run.__table__.select().with_only_columns(Run.id).where(Run.session_id == session_row.id)  # type: ignore[attr-defined]
        await self.session.exec(delete(RunEvent).where(RunEvent.run_id.in_(run_ids)))  # type: ignore[attr-defined,call-overload]
        await self.session.exec(delete(Message).where(Message.session_id == session_row.id))  # type: ignore[call-overload]
        await self.session.exec(delete(Run).where(Run.session_id == session_row.id))  # type: ignore[call-overload]
        await self.delete(session_row)
