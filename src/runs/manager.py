"""The chat manager: accepts messages, has their runs executed one at a time per session, cancels, recovers.

Runs execute in worker processes (`run_workers`, see `_pool.py`) or, with `run_workers = 0`, on this
process's event loop (`_engine.RunEngine`); either way this front keeps the live channels and the waiters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import TERMINAL_STATUSES, RunRepository, ledger
from autobots.db.tables import Message, Run, RunEvent, new_id, now
from autobots.errors import Conflict, InvalidRequest, QuotaExceeded
from autobots.runs import service as run_service
from autobots.runs._channel import ChannelRegistry, Event, RunChannel
from autobots.runs._dispatch import DispatchedRuns
from autobots.runs._engine import RunEngine, new_owner
from autobots.runs._pool import WorkerPool
from autobots.runs._recovery import executor_gone, requeue_or_fail
from autobots.sessions.message_cache import message_cache
from autobots.sessions.service import SessionBusy
from autobots.workflows.secrets import vault
from sqlmodel.ext.asyncio.session import AsyncSession

if TYPE_CHECKING:
    from autobots.sandbox import SandboxManager

logger = logging.getLogger("autobots.runs")
IfBusy = Literal["reject", "enqueue"]
WAIT_POLL_S = 1.0
SUBMIT_BATCH = 64
# When a user over the active-run quota may retry: runs take seconds to minutes, and nothing says which ends next.
ACTIVE_RUNS_RETRY_AFTER_S = 5

__all__ = ["RunManager", "SessionBusy", "worker_count"]


def _busy(session_id: str, run_id: str) -> SessionBusy:
    return SessionBusy(f"session '{session_id}' already has an active run ({run_id}); "
                       "wait for it, cancel it, or send with \"if_busy\": \"enqueue\"", param="if_busy")


def _over_quota(active: int) -> QuotaExceeded:
    return QuotaExceeded(f"you have {active} active runs (queued or running), the most allowed per user; wait for "
                         "one to end or cancel one", retry_after=ACTIVE_RUNS_RETRY_AFTER_S, code="too_many_active_runs")


def worker_count(settings: Settings) -> int:
    """How many run worker processes: the setting, or with `auto` one per core (at most 4)."""
    if settings.run_workers == "auto":
        return max(1, min(4, os.cpu_count() or 1))
    return settings.run_workers


class _Front:
    """What executors report to: this process's live channels and waiters."""

    def __init__(self, manager: RunManager) -> None:
        self.manager = manager

    def open(self, run_id: str, initial: list[Event], on_follow: Callable[[], None] | None = None) -> RunChannel:
        return self.manager.channels.open(run_id, initial, on_follow)

    def discard(self, run_id: str) -> None:
        self.manager.channels.discard(run_id)

    def settled(self, run_id: str) -> None:
        self.manager.wake_waiters(run_id)

    def released(self, session_id: str) -> None:
        """In-process, a session is driven here or nowhere: nothing to do."""


class RunManager:
    """Accepts runs, has them executed, follows them. The `run` table is the ledger; this holds live handles.

    Args:
        db: The database.
        settings: Server settings (concurrency, limits, `run_workers`).
        sandbox: The sandbox manager handed to in-process builders (None: code execution impossible).
    """

    def __init__(self, db: Database, settings: Settings, sandbox: SandboxManager | None = None) -> None:
        self.db = db
        self.settings = settings
        self.owner = new_owner()
        self.channels = ChannelRegistry()
        self.workers = worker_count(settings)
        # What executes runs: the engine in this process, this server's run workers, or workers on any host.
        self.runner: RunEngine | WorkerPool | DispatchedRuns
        if settings.run_dispatch == "procrastinate":
            # Replies are written by workers elsewhere: this process's cache of a session's messages would not
            # hear of them.
            message_cache.enabled = False
            self.runner = DispatchedRuns(db, settings, settled=self.wake_waiters, on_reconnect=self._wake_all)
        elif self.workers:
            self.runner = WorkerPool(settings, _Front(self), count=self.workers, secrets=vault.snapshot,
                                       on_restart=self._recover_and_kick, on_changed=message_cache.invalidate)
            vault.listeners.append(self.runner.share_secrets)
        else:
            self.runner = RunEngine(db, settings, sandbox, _Front(self), owner=self.owner,
                                      max_concurrent=settings.max_concurrent_runs)
        self._submissions: list[tuple[ledger.Submission, asyncio.Future[ledger.Refusal | None]]] = []
        self._submitter: asyncio.Task[None] | None = None
        self._accepting = True
        self._recovery: asyncio.Task[None] | None = None
        self._settled: dict[str, asyncio.Event] = {}

    @property
    def live_count(self) -> int:
        """Runs executing now, as seen from this process."""
        return self.runner.live_count

    def describe(self) -> dict[str, Any]:
        """Where runs execute and whether that is working (for /readyz)."""
        return self.runner.describe()

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover runs whose executor is gone, start the executors and the queued runs."""
        await self.recover_orphans()
        await self.runner.start()
        await self._kick_queued()
        self._recovery = asyncio.create_task(self._recover_periodically(), name="run-recovery")

    async def shutdown(self) -> None:
        """Stop taking runs; the running ones are interrupted and go back to `queued` (they resume from their
        last checkpoint when a server starts again) or end `failed`/`interrupted` when they cannot."""
        self._accepting = False
        if self._recovery:
            self._recovery.cancel()
        if isinstance(self.runner, WorkerPool):
            vault.listeners.remove(self.runner.share_secrets)
        await self.runner.shutdown()

    async def recover_orphans(self) -> int:
        """Runs marked running whose executor is gone: requeue (resume) or fail them. Returns how many. The
        caller kicks the queued sessions (`_kick_queued`) once the executor can take them."""
        active = await self.db.read_in_thread(lambda connection: ledger.run_heads(connection, ledger.EXECUTING))
        orphans = [run for run in active
                   if not self.runner.holds(run.id) and executor_gone(run, own_owner=self.owner,
                                                                    stale_after_s=self.settings.stale_after_s)]
        for run in orphans:
            await requeue_or_fail(self.db, run.id, reason="the server process running it stopped")
            self.wake_waiters(run.id)
        return len(orphans)

    async def _recover_and_kick(self) -> None:
        """Requeue (or fail) the orphaned runs, then kick every session with queued runs: those just requeued,
        and any requeued by another process (the worker of a server that was killed, interrupting its runs
        after this server had started), which has nobody else to start it. Kicking a session that is being
        driven already costs a wake-up that finds nothing new, wherever it is placed."""
        await self.recover_orphans()
        await self._kick_queued()

    async def _kick_queued(self) -> None:
        queued = await self.db.read_in_thread(lambda connection: ledger.run_heads(connection, ("queued",)))
        sessions = dict.fromkeys((run.session_id, run.user_id) for run in queued)
        if isinstance(self.runner, DispatchedRuns):
            if self._accepting:
                await self.runner.kick_queued(sessions)
            return
        for session_id, user_id in sessions:
            self._kick(session_id, user_id)

    def _wake_all(self) -> None:
        """After notifications may have been missed: every waiter and stream of this process looks again."""
        for run_id in list(self._settled):
            self.wake_waiters(run_id)
        self.channels.poke_all()

    async def _recover_periodically(self) -> None:
        """Now and then, recover runs whose executor went silent (another server process that died) and kick
        what is queued."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            try:
                await self._recover_and_kick()
            except Exception:
                logger.warning("orphan recovery failed", exc_info=True)

    # -- submitting ----------------------------------------------------------------------------------------------

    async def submit(self, session: AsyncSession, *, user_id: str, session_id: str, content: str,
                     workflow_id: str, if_busy: IfBusy = "reject") -> tuple[Message, Run]:
        """Persist the user message and a queued run of `workflow_id`, then schedule the run.

        The caller's unit of work is committed first; the message and the run are then written (with the other
        submissions queued meanwhile) in one short transaction on the writer thread, which checks that the
        session has no active run (unless enqueuing), that the user is under `max_active_runs_per_user` active
        runs (counted in the database, so the quota holds across API processes) and that the workflow still
        exists, so that the database write lock is never held while this process's event loop serves other
        requests. When the unit of work wrote something (an inline workflow), a busy session or a user over the
        quota is refused before it commits, so nothing of the request is kept.

        Raises:
            SessionBusy: The session has an active run and `if_busy` is "reject".
            QuotaExceeded: The user has `max_active_runs_per_user` active runs.
            InvalidRequest: The workflow was deleted.
        """
        if not self._accepting:
            raise Conflict("the server is shutting down; retry shortly", code="shutting_down")
        if session.in_transaction():
            repository = RunRepository(session)
            if if_busy != "enqueue" and (active := await repository.active_for_session(session_id)):
                raise _busy(session_id, active[0].id)
            quota = self.settings.max_active_runs_per_user
            if quota and (held := await repository.count_active_for_user(user_id)) >= quota:
                raise _over_quota(held)
        await session.commit()
        message = Message(id=new_id("msg"), session_id=session_id, user_id=user_id, role="user", content=content)
        run = Run(id=new_id("run"), session_id=session_id, user_id=user_id, workflow_id=workflow_id,
                  user_message_id=message.id, status="queued", last_event_seq=1,
                  usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
        message.run_id = run.id
        queued = RunEvent(run_id=run.id, seq=1, type="run.queued", data={"status": "queued"}, created_at=now())
        refusal = await self._write_submission(ledger.Submission(message, run, queued, enqueue=if_busy == "enqueue"))
        if refusal is not None and refusal.workflow_deleted:
            raise InvalidRequest("the session's workflow was deleted: pass workflow_id or an inline workflow",
                                 param="workflow_id", code="workflow_deleted", status=422)
        if refusal is not None and refusal.active_runs is not None:
            raise _over_quota(refusal.active_runs)
        if refusal is not None:
            raise _busy(session_id, refusal.busy_with or "")
        return message, run

    async def _write_submission(self, submission: ledger.Submission) -> ledger.Refusal | None:
        """Queue a submission for the submitter, which writes whatever is queued in one transaction on the
        writer thread (a burst of messages costs a few transactions, not one each), then schedules its run.
        The run is scheduled even if the caller is gone by then."""
        done: asyncio.Future[ledger.Refusal | None] = asyncio.get_running_loop().create_future()
        self._submissions.append((submission, done))
        if self._submitter is None:
            self._submitter = asyncio.create_task(self._submit_queued(), name="run-submitter")
        return await done

    async def _submit_queued(self) -> None:
        try:
            while self._submissions:
                batch, self._submissions = self._submissions[:SUBMIT_BATCH], self._submissions[SUBMIT_BATCH:]
                for (submission, done), outcome in zip(batch, await self._write_batch(batch), strict=True):
                    if isinstance(outcome, BaseException):
                        if not done.done():
                            done.set_exception(outcome)
                        continue
                    if outcome is None:
                        message_cache.invalidate(submission.run.session_id)
                        self._kick(submission.run.session_id, submission.run.user_id)
                    if not done.done():
                        done.set_result(outcome)
        finally:
            self._submitter = None

    async def _write_batch(self, batch: list[tuple[ledger.Submission, asyncio.Future[Any]]]
                           ) -> list[ledger.Refusal | BaseException | None]:
        """The batch in one transaction; if that fails, one at a time, so that one bad submission (e.g. of a
        session deleted meanwhile) fails alone."""
        items = [submission for submission, _ in batch]
        quota = self.settings.max_active_runs_per_user
        try:
            return list(await self.db.write_in_thread(
                lambda connection: ledger.insert_submissions(connection, items, max_active_per_user=quota)))
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        outcomes: list[ledger.Refusal | BaseException | None] = []
        for item in items:
            try:
                outcomes.extend(await self.db.write_in_thread(
                    lambda connection, item=item: ledger.insert_submissions(connection, [item],
                                                                            max_active_per_user=quota)))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _kick(self, session_id: str, user_id: str) -> None:
        if self._accepting:
            self.runner.kick(session_id, user_id)

    # -- cancelling and waiting ----------------------------------------------------------------------------------

    async def cancel(self, run: Run) -> Run:
        """Ask a run to stop. Idempotent; a finished run is returned unchanged."""
        if run.status in TERMINAL_STATUSES:
            return run
        await self.runner.cancel(run.id, run.session_id)
        return await self._reload(run.id)

    async def wait(self, run_id: str, limit_s: float | None = None) -> Run:
        """Until the run is terminal (or `limit_s` passes); returns its latest row."""
        deadline = None if limit_s is None else time.monotonic() + limit_s
        while True:
            run = await self._reload(run_id)
            remaining = None if deadline is None else deadline - time.monotonic()
            if run.status in TERMINAL_STATUSES or (remaining is not None and remaining <= 0):
                self._settled.pop(run_id, None)
                return run
            # Woken when a run of this server settles; the timeout covers runs settled elsewhere.
            settled = self._settled.setdefault(run_id, asyncio.Event())
            try:
                await asyncio.wait_for(settled.wait(), timeout=min(remaining or WAIT_POLL_S, WAIT_POLL_S))
            except TimeoutError:
                pass

    def wake_waiters(self, run_id: str) -> None:
        event = self._settled.pop(run_id, None)
        if event is not None:
            event.set()
        self.channels.poke(run_id)

    async def _reload(self, run_id: str) -> Run:
        run = await self.db.read_in_thread(lambda connection: run_service.public_run(connection, run_id))
        assert run is not None
        return run
