"""Users and API keys. Keys are shown once and stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from autobots.db.repositories import UserRepository
from autobots.db.tables import ApiKey, User, new_id
from autobots.errors import NotFound
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

KEY_PREFIX = "ab-"


class UserNotFound(NotFound):
    code = "user_not_found"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def get_by_name(db: AsyncSession, *, name: str) -> User | None:
    return await UserRepository(db).get_by_name(name)


async def get(db: AsyncSession, *, user_id: str) -> User | None:
    return await UserRepository(db).get(user_id)


async def get_or_create(db: AsyncSession, *, name: str) -> User:
    """The user called `name`, created if missing; a concurrent creation of the same name is read back."""
    repository = UserRepository(db)
    user = await repository.get_by_name(name)
    if user is not None:
        return user
    try:
        async with db.begin_nested():
            return await repository.add(User(id=new_id("usr"), name=name))
    except IntegrityError:
        user = await repository.get_by_name(name)
        if user is None:
            raise
        return user


async def acting_user(db: AsyncSession, *, caller: User, user_id: str | None, local_mode: bool) -> User:
    """The user a request names to act as (seed-era payloads carry a `user_id`): the caller itself, by id or name;
    in local mode (one trusted caller) any user, by id, else by name, created if new; otherwise nobody else."""
    if not user_id or user_id in (caller.id, caller.name):
        return caller
    if not local_mode:
        raise UserNotFound(f"no user '{user_id}'", param="user_id")
    existing = await get(db, user_id=user_id) if user_id.startswith("usr_") else None
    return existing or await get_or_create(db, name=user_id)


async def create_api_key(db: AsyncSession, *, user: User) -> str:
    """A new key for `user`; the plain key is returned once and never stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    await UserRepository(db).add_key(ApiKey(user_id=user.id, key_hash=hash_key(key), prefix=key[:8]))
    return key


async def authenticate(db: AsyncSession, *, key: str) -> User | None:
    return await UserRepository(db).get_by_key_hash(hash_key(key))
