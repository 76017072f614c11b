"""The chat manager: accepts messages, runs them in the background one per session, cancels, recovers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any, Literal

from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import ACTIVE_STATUSES, TERMINAL_STATUSES, RunRepository
from autobots.db.tables import Message, Run, RunEvent, Workflow, new_id, now
from autobots.errors import Conflict
from autobots.runs._channel import ChannelRegistry, Event
from autobots.runs._executor import LiveRun, RunExecution
from autobots.runs._journal import RunJournal
from autobots.runs._recorder import RunRecorder, StaleAttempt
from autobots.sessions.service import SessionBusy
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

logger = logging.getLogger("autobots.runs")
IfBusy = Literal["reject", "enqueue"]
HEARTBEAT_S = 10.0
STALE_AFTER_S = 6 * HEARTBEAT_S
WAIT_POLL_S = 1.0


class RunManager:
    """Executes runs in this process. The `run` table is the ledger; this holds only live handles.

    Args:
        db: The database.
        settings: Server settings (concurrency, limits).
        sandbox: The sandbox manager handed to builders (None: code execution impossible).
    """

    def __init__(self, db: Database, settings: Settings, sandbox: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.sandbox = sandbox
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.channels = ChannelRegistry()
        self._live: dict[str, LiveRun] = {}
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: set[str] = set()
        self._session_locks: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent_runs)
        self._accepting = True
        self._heartbeat: asyncio.Task[None] | None = None
        self._settled: dict[str, asyncio.Event] = {}
        self.journal = RunJournal(db)

    # -- lifecycle -----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover runs whose executor is gone, start queued ones, begin heartbeats."""
        self.journal.start()
        await self.recover_orphans()
        async with self.db.session() as session:
            queued = await RunRepository(session).with_status(("queued",))
        for session_id in dict.fromkeys(run.session_id for run in queued):
            self._kick(session_id)
        self._heartbeat = asyncio.create_task(self._beat())

    async def shutdown(self) -> None:
        """Stop taking runs; interrupt the running ones, which go back to `queued` and resume from their
        last checkpoint when a server starts again (or end `failed`/`interrupted` when they cannot)."""
        self._accepting = False
        if self._heartbeat:
            self._heartbeat.cancel()
        for live in self._live.values():
            live.interrupted = True
        for driver in list(self._drivers.values()):
            driver.cancel()
        for driver in list(self._drivers.values()):
            try:
                await driver
            except (asyncio.CancelledError, Exception):
                pass
        await self.journal.stop()
        async with self.db.session() as session:
            leftovers = await RunRepository(session).with_status(("running", "cancelling"))
        for run in leftovers:
            if run.owner == self.owner:
                await self._requeue_or_fail(run, reason="the server shut down during the run")

    async def recover_orphans(self) -> int:
        """Runs marked running whose executor is gone: requeue (resume) or fail them. Returns how many."""
        async with self.db.session() as session:
            active = await RunRepository(session).with_status(("running", "cancelling"))
        orphans = [run for run in active if run.id not in self._live and self._executor_gone(run)]
        for run in orphans:
            await self._requeue_or_fail(run, reason="the server process running it stopped")
            self._kick(run.session_id)
        return len(orphans)

    def _executor_gone(self, run: Run) -> bool:
        """The run's owner is this process (but no live handle), a dead process on this host, or silent."""
        if run.owner is None or run.owner == self.owner:
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
        return run.heartbeat_at is None or time.time() - run.heartbeat_at > STALE_AFTER_S

    # -- submitting ----------------------------------------------------------------------------------------------

    async def submit(self, session: AsyncSession, *, user_id: str, session_id: str, content: str,
                     workflow: Workflow, if_busy: IfBusy = "reject") -> tuple[Message, Run]:
        """Persist the user message and a queued run, commit, then schedule the run.

        This commits the caller's unit of work on purpose: the user message must be durable before the run
        can start, and the per-session check must hold until the rows are visible to the next request.
        """
        if not self._accepting:
            raise Conflict("the server is shutting down; retry shortly", code="shutting_down")
        lock = self._session_locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            active = await RunRepository(session).active_for_session(session_id)
            if active and if_busy != "enqueue":
                raise SessionBusy(f"session '{session_id}' already has an active run ({active[0].id}); "
                                  "wait for it, cancel it, or send with \"if_busy\": \"enqueue\"",
                                  param="if_busy")
            message = Message(id=new_id("msg"), session_id=session_id, user_id=user_id, role="user",
                              content=content)
            run = Run(id=new_id("run"), session_id=session_id, user_id=user_id, workflow_id=workflow.id,
                      user_message_id=message.id, spec=workflow.spec, status="queued", last_event_seq=1,
                      usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
            message.run_id = run.id
            session.add(message)
            session.add(run)
            await session.flush()
            session.add(RunEvent(run_id=run.id, seq=1, type="run.queued", data={"status": "queued"}))
            await session.commit()
        self._kick(session_id)
        return message, run

    # -- cancelling ----------------------------------------------------------------------------------------------

    async def cancel(self, run: Run) -> Run:
        """Ask a run to stop. Idempotent; a finished run is returned unchanged."""
        if run.status in TERMINAL_STATUSES:
            return run
        live = self._live.get(run.id)
        if live is not None:
            if not live.cancel_requested:
                live.cancel_requested = True
                async with self.db.session() as session:
                    await RunRepository(session).update_fenced(run.id, run.attempt, {"status": "cancelling"})
                live.token.cancel()
            return await self._reload(run.id)
        async with self.db.session() as session:
            repository = RunRepository(session)
            fresh = await repository.get(run.id)
            if fresh is None or fresh.status in TERMINAL_STATUSES:
                return fresh or run
            live_elsewhere = fresh.status != "queued" and not self._executor_gone(fresh)
            if live_elsewhere:
                raise Conflict(f"run '{run.id}' is executing in another server process; cancel it there",
                               code="run_owned_elsewhere")
            await _settle_idle_run(repository, fresh, status="cancelled", expected=ACTIVE_STATUSES,
                                   stop_reason="cancelled by the client")
        self._wake_waiters(run.id)
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
            # Woken when a run of this process settles; the timeout covers runs settled elsewhere.
            settled = self._settled.setdefault(run_id, asyncio.Event())
            try:
                await asyncio.wait_for(settled.wait(), timeout=min(remaining or WAIT_POLL_S, WAIT_POLL_S))
            except TimeoutError:
                pass

    def _wake_waiters(self, run_id: str) -> None:
        event = self._settled.pop(run_id, None)
        if event is not None:
            event.set()
        self.channels.poke(run_id)

    # -- scheduling ----------------------------------------------------------------------------------------------

    def _kick(self, session_id: str) -> None:
        self._wakeups.add(session_id)
        if session_id not in self._drivers and self._accepting:
            self._drivers[session_id] = asyncio.create_task(self._drive(session_id), name=f"session-{session_id}")

    async def _drive(self, session_id: str) -> None:
        """Run the session's queued runs in order, one at a time. A database hiccup is retried with backoff:
        a driver that died would strand the session's queued runs."""
        failures = 0
        try:
            while True:
                self._wakeups.discard(session_id)
                try:
                    run = await self._next_queued(session_id)
                    if run is None:
                        if session_id in self._wakeups:
                            continue
                        return
                    await self._execute(run)
                    failures = 0
                except Exception:
                    failures += 1
                    logger.warning("session %s: scheduling failed (%d in a row); retrying", session_id, failures,
                                   exc_info=failures == 1)
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
        finally:
            self._drivers.pop(session_id, None)

    async def _next_queued(self, session_id: str) -> Run | None:
        async with self.db.read_session() as session:
            statement = (select(Run).where(Run.session_id == session_id, Run.status == "queued")
                         .order_by(Run.pk).limit(1))  # type: ignore[arg-type]
            return (await session.exec(statement)).first()

    async def _execute(self, run: Run) -> None:
        async with self._slots:
            attempt = run.attempt + 1
            started_at = now()
            async with self.db.session() as session:
                claimed = await RunRepository(session).update_fenced(run.id, run.attempt, {
                    "status": "running", "attempt": attempt, "owner": self.owner,
                    "started_at": run.started_at or started_at, "heartbeat_at": time.time()}, status=("queued",))
                if not claimed:
                    return
                fresh = await RunRepository(session).get(run.id)
                user_message = (await session.exec(select(Message).where(Message.id == run.user_message_id))).first()
                existing = await RunRepository(session).events(run.id)
            if fresh is None or fresh.status != "running":
                return
            channel = self.channels.open(run.id, [
                Event(seq=e.seq, type=e.type, data=e.data or {}, created_at=e.created_at) for e in existing])
            live = LiveRun(run_id=run.id, session_id=run.session_id)
            live.task = asyncio.current_task()  # type: ignore[assignment]
            self._live[run.id] = live
            recorder = RunRecorder(self.journal, run_id=run.id, attempt=attempt, next_seq=fresh.last_event_seq,
                                   channel=channel)
            try:
                await recorder.emit("run.started", {"status": "running", "attempt": attempt})
                content = user_message.content if user_message else ""
                execution = RunExecution(db=self.db, settings=self.settings, sandbox=self.sandbox, run=fresh,
                                         recorder=recorder, live=live, content=content, resume=fresh.checkpoint)
                await execution.execute()
            except StaleAttempt:
                logger.warning("run %s: attempt %s is stale; its writes were refused", run.id, attempt)
            except Exception:
                logger.exception("run %s: could not be recorded", run.id)
                await self.journal.drain()
                await self._fail(fresh, reason="the run could not be recorded")
            finally:
                self._live.pop(run.id, None)
                await channel.close()
                self.channels.discard(run.id)
                self._wake_waiters(run.id)

    async def _requeue_or_fail(self, run: Run, *, reason: str) -> None:
        """An interrupted run: back to `queued` when it can resume (a team checkpoint, or nothing done yet),
        `cancelled` when a cancel was pending, else `failed` with error type `interrupted`."""
        async with self.db.session() as session:
            repository = RunRepository(session)
            fresh = await repository.get(run.id)
            if fresh is None or fresh.status not in ("running", "cancelling"):
                return
            # No checkpoint: no agent has spoken yet, so starting over loses nothing.
            resumable = fresh.checkpoint is None or fresh.checkpoint.get("team") is not None
            expected = ("running", "cancelling")
            if fresh.status == "cancelling":
                await _settle_idle_run(repository, fresh, status="cancelled", expected=expected,
                                       stop_reason="cancelled by the client", owner_gone=True)
            elif resumable:
                await _settle_idle_run(repository, fresh, status="queued", expected=expected, owner_gone=True,
                                       reason=f"{reason}; it resumes from its last checkpoint")
            else:
                await _settle_idle_run(repository, fresh, status="failed", expected=expected, owner_gone=True,
                                       error={"type": "interrupted", "message": reason},
                                       stop_reason="error: interrupted")

    async def _fail(self, run: Run, *, reason: str) -> None:
        async with self.db.session() as session:
            repository = RunRepository(session)
            fresh = await repository.get(run.id)
            if fresh is None or fresh.status not in ACTIVE_STATUSES:
                return
            await _settle_idle_run(repository, fresh, status="failed", expected=ACTIVE_STATUSES,
                                   error={"type": "interrupted", "message": reason}, stop_reason="error: interrupted")

    async def _beat(self) -> None:
        """Heartbeats for live runs; and, now and then, recovery of runs whose executor went silent."""
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            beats += 1
            if beats % 3 == 0:
                try:
                    await self.recover_orphans()
                except Exception:
                    logger.warning("orphan recovery failed", exc_info=True)
            ids = list(self._live)
            if not ids:
                continue
            try:
                async with self.db.session() as session:
                    from sqlalchemy import update

                    await session.exec(update(Run).where(Run.id.in_(ids), Run.owner == self.owner)  # type: ignore[call-overload,attr-defined]
                                       .values(heartbeat_at=time.time()))
            except Exception:
                logger.warning("heartbeat write failed", exc_info=True)

    async def _reload(self, run_id: str) -> Run:
        async with self.db.read_session() as session:
            run = await RunRepository(session).get(run_id)
        assert run is not None
        return run


async def _settle_idle_run(repository: RunRepository, run: Run, *, status: str, expected: tuple[str, ...],
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
