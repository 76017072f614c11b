"""Request-scoped dependencies: the process services and the unit of work.

Dependencies that do no I/O are still `async def`: FastAPI runs a plain `def` dependency in the thread
pool, a thread hop (and its locking) per request for what is an attribute read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Literal

from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import PageQuery
from autobots.db.tables import User
from autobots.models import ModelAccess
from autobots.runs import RunManager
from autobots.sandbox import SandboxManager
from autobots.web.metrics import Metrics
from autobots.workflows.service import ServerRules
from fastapi import Depends, Query, Request
from sqlmodel.ext.asyncio.session import AsyncSession


@dataclass
class Services:
    """What the app holds for its lifetime (built in the lifespan)."""

    settings: Settings
    db: Database
    runs: RunManager
    sandbox: SandboxManager | None  # None: code execution impossible
    metrics: Metrics
    # Recent authentications (web/auth.py): credential -> (expiry on the monotonic clock, user).
    identities: dict[str, tuple[float, User]] = field(default_factory=dict)
    _rules: ServerRules | None = None

    def spec_rules(self) -> ServerRules:
        """What a spec may use on this server (its sandboxes, its model rules)."""
        if self._rules is None:
            access = ModelAccess.from_settings(self.settings)
            if self.sandbox is None:
                self._rules = ServerRules(frozenset(), None, access)
            else:
                choice = self.sandbox.choice
                self._rules = ServerRules(frozenset(choice.available), choice.kind, access)
        return self._rules


async def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def get_db_session(request: Request,
                         services: Annotated[Services, Depends(get_services)]) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the handler returns, rolled back when it raises.
    GET and HEAD only read, so they get a read session that never waits for writers."""
    if request.method in ("GET", "HEAD"):
        async with services.db.read_session() as session:
            yield session
        return
    async with services.db.session() as session:
        yield session


async def page_query(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    order: Annotated[Literal["asc", "desc"], Query(description="Sort by creation")] = "desc",
    after: Annotated[str | None, Query(max_length=64, description="Cursor: an id from the previous page")] = None,
    before: Annotated[str | None, Query(max_length=64, description="Cursor: an id from the next page")] = None,
) -> PageQuery:
    return PageQuery(limit=limit, order=order, after=after, before=before)


ServicesDep = Annotated[Services, Depends(get_services)]
# scope="function": the unit of work commits before the response is sent, so a 2xx means it is durable.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
Pagination = Annotated[PageQuery, Depends(page_query)]
