from __future__ import annotations

from autobots.db.repositories._base import Repository
from autobots.db.tables import ApiKey, User
from sqlmodel import select


class UserRepository(Repository[User]):
    model = User

    async def get_by_name(self, name: str) -> User | None:
        return (await self.db.exec(select(User).where(User.name == name))).first()

    async def get_by_key_hash(self, key_hash: str) -> User | None:
        statement = (
            select(User)
            .join(ApiKey, ApiKey.user_id == User.id)
            .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
        )
        return (await self.db.exec(statement)).first()

    async def add_key(self, key: ApiKey) -> ApiKey:
        self.db.add(key)
        await self.db.flush()
        return key
