from __future__ import annotations

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import Workflow


class WorkflowRepository(Repository[Workflow]):
    model = Workflow

    async def get_owned(self, id: str, user_id: str) -> Workflow | None:
        return await self.get(
            id, filters=[Workflow.user_id == user_id, Workflow.deleted_at.is_(None)]  # type: ignore[union-attr]
        )

    async def list_owned(self, user_id: str, page: PageQuery) -> Page[Workflow]:
        return await self.paginate(
            page, filters=[Workflow.user_id == user_id, Workflow.deleted_at.is_(None)]  # type: ignore[union-attr]
        )
