"""Authentication: `Authorization: Bearer <key>`; in local mode (loopback only) `X-User-Id` or `local`.

Users are looked up in units of work of their own, before the request's: the request's may be a write
transaction, and on SQLite a second writer inside the same request would wait for itself. Successful
lookups are remembered for a few seconds (keys are not revoked through the API; a revocation in the
database takes effect within `IDENTITY_TTL_S`).
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated

from autobots.config import read_secret_env
from autobots.db.tables import User
from autobots.errors import Unauthorized
from autobots.users import service as user_service
from autobots.web.deps import ServicesDep
from fastapi import Depends, Header

LOCAL_USER = "local"
IDENTITY_TTL_S = 30.0


def _remembered(identities: dict[str, tuple[float, User]], credential: str) -> User | None:
    entry = identities.get(credential)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def _remember(identities: dict[str, tuple[float, User]], credential: str, user: User) -> None:
    if len(identities) > 10_000:
        identities.clear()
    identities[credential] = (time.monotonic() + IDENTITY_TTL_S, user)


async def current_user(
    services: ServicesDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_user_id: Annotated[str | None, Header(max_length=200, include_in_schema=False)] = None,
) -> User:
    if authorization:
        scheme, _, key = authorization.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <api key>'")
        credential = "key:" + user_service.hash_key(key.strip())
        user = _remembered(services.identities, credential)
        if user is None:
            async with services.db.read_session() as session:
                user = await user_service.authenticate(session, key=key.strip())
            if user is None:
                raise Unauthorized("invalid API key")
            _remember(services.identities, credential, user)
        return user
    if services.settings.auth_mode == "local":
        name = (x_user_id or LOCAL_USER).strip() or LOCAL_USER
        credential = f"name:{name}"
        user = _remembered(services.identities, credential)
        if user is None:
            async with services.db.read_session() as session:
                user = await user_service.get_by_name(session, name=name)
            if user is None:
                async with services.db.session() as write_session:
                    user = await user_service.get_or_create(write_session, name=name)
            _remember(services.identities, credential, user)
        return user
    raise Unauthorized("an API key is required: send 'Authorization: Bearer <api key>'", code="missing_api_key")


CurrentUser = Annotated[User, Depends(current_user)]


async def operator_access(
    services: ServicesDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> bool:
    """Whether the caller may see the service's internals: always in local mode; in apikey mode only with
    `Authorization: Bearer <operator key>`, the key held by the variable named by `operator_key_env`."""
    if services.settings.auth_mode == "local":
        return True
    name = services.settings.operator_key_env
    expected = read_secret_env(name) if name else None
    if not expected or not authorization:
        return False
    scheme, _, key = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), expected.strip().encode())


OperatorAccess = Annotated[bool, Depends(operator_access)]
