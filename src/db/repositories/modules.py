from __future__ import annotations

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import PromptModule
from sqlmodel import select


class ModuleRepository(Repository[PromptModule]):
    model = PromptModule

    async def get_owned(self, id: str, user_id: str) -> PromptModule | None:
        return await self.get(id, filters=[PromptModule.user_id == user_id])

    async def get_by_name(self, name: str, user_id: str) -> PromptModule | None:
        result = await self.db.exec(select(PromptModule).where(PromptModule.user_id == user_id,
                                                                    PromptModule.name == name))
        return result.first()

    async def list_owned(self, user_id: str, page: PageQuery) -> Page[PromptModule]:
        return await self.paginate(page, filters=[PromptModule.user_id == user_id])

    async def all_owned(self, user_id: str) -> list[PromptModule]:
        result = await self.db.exec(select(PromptModule).where(PromptModule.user_id == user_id))
        return list(result.all())
