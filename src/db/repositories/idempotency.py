from __future__ import annotations

from typing import Any

from autobots.db.repositories._base import Repository
from autobots.db.tables import IdempotencyRecord, now
from sqlalchemy import delete, update
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

    async def complete(self, user_id: str, key: str, *, status_code: int, response: dict[str, Any],
                       expires_at: int) -> None:
        """Store the response of the request that claimed the key."""
        await self.db.exec(update(IdempotencyRecord).where(  # type: ignore[call-overload]
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
            .values(status_code=status_code, response=response, expires_at=expires_at))

    async def release(self, user_id: str, key: str) -> None:
        """Forget a claim whose request did not succeed, so that the key may be used again."""
        await self.db.exec(delete(IdempotencyRecord).where(  # type: ignore[call-overload]
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
