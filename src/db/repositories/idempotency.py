from __future__ import annotations

from autobots.db.repositories._base import Repository
from autobots.db.tables import IdempotencyRecord, now
from sqlalchemy import delete
from sqlmodel import select


class IdempotencyRepository(Repository[IdempotencyRecord]):
    model = IdempotencyRecord

    async def find(self, user_id: str, key: str) -> IdempotencyRecord | None:
        statement = select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id,
            IdempotencyRecord.key == key,
            IdempotencyRecord.expires_at > now(),
        )
        return (await self.db.exec(statement)).first()

    async def purge_expired(self) -> None:
        await self.db.exec(delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now()))  # type: ignore[call-overload]
