"""Users and API keys. Keys are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from autobots.db.repositories import UserRepository
from autobots.db.tables import ApiKey, User, new_id
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

KEY_PREFIX = "ab-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def get_by_name(session: AsyncSession, *, name: str) -> User | None:
    return await UserRepository(session).get_by_name(name)


async def get(session: AsyncSession, *, user_id: str) -> User | None:
    return await UserRepository(session).get(user_id)


async def get_or_create(session: AsyncSession, *, name: str) -> User:
    """The user called `name`, created if missing; a concurrent creation of the same name is read back."""
    repository = UserRepository(session)
    user = await repository.get_by_name(name)
    if user is not None:
        return user
    try:
        async with session.begin_nested():
            return await repository.add(User(id=new_id("usr"), name=name))
    except IntegrityError:
        user = await repository.get_by_name(name)
        if user is None:
            raise
        return user


async def create_api_key(session: AsyncSession, *, user: User) -> str:
    """A new key for `user`; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    await UserRepository(session).add_key(ApiKey(user_id=user.id, key_hash=hash_key(key), prefix=key[:8]))
    return key


async def authenticate(session: AsyncSession, *, key: str) -> User | None:
    return await UserRepository(session).get_by_key_hash(hash_key(key))
