from __future__ import annotations

from typing import Any

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import Run, RunEvent
from sqlalchemy import func, update
from sqlalchemy.orm import defer
from sqlmodel import select

ACTIVE_STATUSES = ("queued", "running", "cancelling")
TERMINAL_STATUSES = ("completed", "incomplete", "failed", "cancelled")
# What API reads of a run leave out: the spec copy and the team checkpoint are for executors, and are the bulk
# of a running run's row. Touching them on a row loaded this way raises instead of loading them.
PUBLIC_ONLY = (defer(Run.spec, raiseload=True), defer(Run.checkpoint, raiseload=True))  # type: ignore[arg-type]


def events_after_statement(run_id: str, starting_after: int) -> Any:
    """A run's events after the sequence number `starting_after`, in order."""
    return (select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > starting_after)
            .order_by(RunEvent.seq))  # type: ignore[arg-type]


class RunRepository(Repository[Run]):
    model = Run

    async def get_owned(self, id: str, user_id: str) -> Run | None:
        """The caller's run, without its executor-only fields (`PUBLIC_ONLY`)."""
        return await self.get(id, filters=[Run.user_id == user_id], options=PUBLIC_ONLY)

    async def list_for_session(self, session_id: str, page: PageQuery) -> Page[Run]:
        return await self.paginate(page, filters=[Run.session_id == session_id], options=PUBLIC_ONLY)

    async def active_for_session(self, session_id: str) -> list[Run]:
        statement = (
            select(Run)
            .where(Run.session_id == session_id, Run.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
            .order_by(Run.pk)  # type: ignore[arg-type]
        )
        return list((await self.db.exec(statement)).all())

    async def count_active_for_user(self, user_id: str) -> int:
        """The user's queued, running and cancelling runs."""
        statement = select(func.count()).select_from(Run).where(
            Run.user_id == user_id, Run.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
        return int((await self.db.exec(statement)).one())

    async def with_status(self, statuses: tuple[str, ...]) -> list[Run]:
        statement = select(Run).where(Run.status.in_(statuses)).order_by(Run.pk)  # type: ignore[attr-defined,arg-type]
        return list((await self.db.exec(statement)).all())

    async def update_fenced(self, run_id: str, attempt: int, values: dict[str, Any],
                            *, status: tuple[str, ...] | None = None) -> bool:
        """Write `values` only if the run is still on `attempt` (and in one of `status`, when given):
        a stale executor's writes are refused."""
        statement = update(Run).where(Run.id == run_id, Run.attempt == attempt)  # type: ignore[arg-type]
        if status is not None:
            statement = statement.where(Run.status.in_(status))  # type: ignore[attr-defined]
        statement = statement.values(**values)
        result = await self.db.exec(statement)  # type: ignore[call-overload]
        return bool(result.rowcount)

    async def add_events(self, events: list[RunEvent]) -> None:
        self.db.add_all(events)
        await self.db.flush()

    async def events(self, run_id: str, *, starting_after: int = 0) -> list[RunEvent]:
        statement = events_after_statement(run_id, starting_after)
        return list((await self.db.exec(statement)).all())

    async def max_event_seq(self, run_id: str) -> int:
        statement = select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id)
        return int((await self.db.exec(statement)).first() or 0)
