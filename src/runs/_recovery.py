"""Moves on the run ledger that no executor makes: settling idle runs, requeueing interrupted ones.

Shared by the front (`RunManager`: cancel of a queued run, orphan recovery) and the executing engines
(their shutdown). Every write is fenced by the run's attempt and expected statuses.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from autobots.db import Database
from autobots.db.repositories import ACTIVE_STATUSES, TERMINAL_STATUSES, RunRepository
from autobots.db.repositories.ledger import RunHead
from autobots.db.tables import Run, RunEvent, now


def executor_gone(run: Run | RunHead, *, own_owner: str, stale_after_s: float) -> bool:
    """The run's owner is `own_owner` (which holds no live handle for it), a dead process on this host, or
    an executor whose heartbeat went silent for `stale_after_s` (`Settings.stale_after_s`)."""
    if run.owner is None or run.owner == own_owner:
        return True
    host, _, rest = run.owner.partition(":")
    pid = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return run.heartbeat_at is None or time.time() - run.heartbeat_at > stale_after_s


async def settle_idle_run(repository: RunRepository, run: Run, *, status: str, expected: tuple[str, ...],
                          error: dict[str, str] | None = None, stop_reason: str | None = None,
                          reason: str | None = None, owner_gone: bool = False) -> bool:
    """Move a run that no executor holds to `status`, with its `run.<status>` event (and `done` when the
    status is terminal), fenced by its attempt and by `expected` statuses. False if the run moved on."""
    terminal = status in TERMINAL_STATUSES
    seq = run.last_event_seq
    values: dict[str, Any] = {"status": status, "error": error, "stop_reason": stop_reason,
                              "last_event_seq": seq + (2 if terminal else 1)}
    if terminal:
        values["finished_at"] = now()
    if owner_gone:
        values["owner"] = None
    if not await repository.update_fenced(run.id, run.attempt, values, status=expected):
        return False
    data: dict[str, Any] = {"status": status}
    if error:
        data["error"] = error
    if reason:
        data["reason"] = reason
    events = [RunEvent(run_id=run.id, seq=seq + 1, type=f"run.{status}", data=data)]
    if terminal:
        events.append(RunEvent(run_id=run.id, seq=seq + 2, type="done", data={"status": status}))
    await repository.add_events(events)
    return True


async def requeue_or_fail(db: Database, run_id: str, *, reason: str) -> None:
    """An interrupted run: back to `queued` when it can resume (a team checkpoint, or nothing done yet),
    `cancelled` when a cancel was pending, else `failed` with error type `interrupted`."""
    async with db.session() as session:
        repository = RunRepository(session)
        fresh = await repository.get(run_id)
        if fresh is None or fresh.status not in ("running", "cancelling"):
            return
        # No checkpoint: no agent has spoken yet, so starting over loses nothing.
        resumable = fresh.checkpoint is None or fresh.checkpoint.get("team") is not None
        expected = ("running", "cancelling")
        if fresh.status == "cancelling":
            await settle_idle_run(repository, fresh, status="cancelled", expected=expected,
                                  stop_reason="cancelled by the client", owner_gone=True)
        elif resumable:
            await settle_idle_run(repository, fresh, status="queued", expected=expected, owner_gone=True,
                                  reason=f"{reason}; it resumes from its last checkpoint")
        else:
            await settle_idle_run(repository, fresh, status="failed", expected=expected, owner_gone=True,
                                  error={"type": "interrupted", "message": reason}, stop_reason="error: interrupted")


async def fail_run(db: Database, run_id: str, *, reason: str) -> None:
    """End an active run as failed (`interrupted`), unless it already moved on."""
    async with db.session() as session:
        repository = RunRepository(session)
        fresh = await repository.get(run_id)
        if fresh is None or fresh.status not in ACTIVE_STATUSES:
            return
        await settle_idle_run(repository, fresh, status="failed", expected=ACTIVE_STATUSES,
                              error={"type": "interrupted", "message": reason}, stop_reason="error: interrupted")
