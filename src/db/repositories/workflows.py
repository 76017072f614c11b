from __future__ import annotations

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import Workflow
from sqlmodel import select


class WorkflowRepository(Repository[Workflow]):
    model = Workflow

    async def get_owned(self, id: str, user_id: str) -> Workflow | None:
        return await self.get(
            id, filters=[Workflow.user_id == user_id, Workflow.deleted_at.is_(None)]  # type: ignore[union-attr]
        )

    async def get_owned_many(self, ids: set[str], user_id: str) -> list[Workflow]:
        """The user's live workflows among `ids`, in one query."""
        statement = select(Workflow).where(Workflow.id.in_(ids), Workflow.user_id == user_id,  # type: ignore[attr-defined]
                                           Workflow.deleted_at.is_(None))  # type: ignore[union-attr]
        return list((await self.db.exec(statement)).all())

    async def list_owned(self, user_id: str, page: PageQuery) -> Page[Workflow]:
        return await self.paginate(
            page, filters=[Workflow.user_id == user_id, Workflow.deleted_at.is_(None)]  # type: ignore[union-attr]
        )
