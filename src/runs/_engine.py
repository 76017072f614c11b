"""The executing half of the chat manager: drives each session's queued runs, one at a time, in this process.

An engine runs in the API process (`run_workers = 0`) or in a worker process (`_worker.py`).
It tells whoever follows runs what happens through a `RunObserver`: the API process's live channels
directly, or a worker's link to the API process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any, Protocol

from autobots import models
from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import ACTIVE_STATUSES, TERMINAL_STATUSES, RunRepository, ledger
from autobots.errors import Conflict
from autobots.runs._channel import Event
from autobots.runs._execution import HISTORY_LIMIT, LiveRun, RunExecution, as_model_context
from autobots.runs._fair import FairSlots
from autobots.runs._journal import RunJournal
from autobots.runs._recorder import RunRecorder, StaleAttempt
from autobots.runs._recovery import executor_gone, fail_run, requeue_or_fail, settle_idle_run

logger = logging.getLogger("autobots.runs")


class LiveSink(Protocol):
    async def append(self, event: Event) -> None: ...

    async def close(self) -> None: ...


class RunObserver(Protocol):
    """Where an engine reports live runs: opened (with the events so far), their events, and settling."""

    def open(self, run_id: str, initial: list[Event]) -> LiveSink: ...

    def discard(self, run_id: str) -> None: ...

    def settled(self, run_id: str) -> None: ...

    def released(self, session_id: str) -> None:
        """This engine stopped driving the session: nothing of it is queued or running here."""


def new_owner() -> str:
    """An executor identity: host and pid (so a dead process on this host is recognised) and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RunEngine:
    """Executes the runs of the sessions it is kicked for. The `run` table is the ledger; this holds only
    live handles.

    Args:
        db: The database.
        settings: Server settings (limits).
        sandbox: The sandbox manager handed to builders (None: code execution impossible).
        observer: Where live runs are reported.
        max_concurrent: Runs executing at once here; more wait for a slot, which goes to the waiting user with the
            fewest runs executing here (users take turns), not to the longest waiting run.
        owner: This executor's identity in the ledger.
        events_channel: The PostgreSQL channel the journal NOTIFYs of the runs it wrote (see `RunJournal`).
    """

    def __init__(self, db: Database, settings: Settings, sandbox: Any, observer: RunObserver, *,
                 max_concurrent: int, owner: str | None = None, events_channel: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.sandbox = sandbox
        self.observer = observer
        self.owner = owner or new_owner()
        self.journal = RunJournal(db, notify_channel=events_channel)
        self._live: dict[str, LiveRun] = {}
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._wakeups: set[str] = set()
        self._slots = FairSlots(max_concurrent)
        self._accepting = True
        self._heartbeat: asyncio.Task[None] | None = None

    def holds(self, run_id: str) -> bool:
        return run_id in self._live

    @property
    def live_count(self) -> int:
        return len(self._live)

    def describe(self) -> dict[str, Any]:
        return {"ok": self._accepting, "executor": "in-process", "live_runs": self.live_count}

    async def start(self) -> None:
        self.journal.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="run-heartbeat")

    async def shutdown(self) -> None:
        """Stop taking runs; interrupt the running ones, which go back to `queued` and resume from their
        last checkpoint when an engine starts again (or end `failed`/`interrupted` when they cannot)."""
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
        await models.close_shared_clients()
        async with self.db.session() as session:
            leftovers = await RunRepository(session).with_status(("running", "cancelling"))
        for run in leftovers:
            if run.owner == self.owner:
                await requeue_or_fail(self.db, run.id, reason="the server shut down during the run")
                self.observer.settled(run.id)

    # -- scheduling ----------------------------------------------------------------------------------------------

    def kick(self, session_id: str, user_id: str) -> None:
        """Make sure the session's queued runs (of `user_id`, who owns the session) get executed."""
        self._wakeups.add(session_id)
        if session_id not in self._drivers and self._accepting:
            self._drivers[session_id] = asyncio.create_task(self._drive(session_id, user_id),
                                                            name=f"session-{session_id}")

    async def drive(self, session_id: str, user_id: str) -> None:
        """Execute the session's queued runs here, returning when none is left (a dispatched job's body)."""
        self.kick(session_id, user_id)
        driver = self._drivers.get(session_id)
        if driver is not None:
            await asyncio.shield(driver)

    def cancel_live(self, run_id: str) -> bool:
        """Stop a run executing here whose cancel was recorded elsewhere (its status is `cancelling`); False when
        it is not live here."""
        live = self._live.get(run_id)
        if live is None:
            return False
        if not live.cancel_requested:
            live.cancel_requested = True
            live.token.cancel()
        return True

    def live_ids(self) -> list[str]:
        return list(self._live)

    async def cancel(self, run_id: str, session_id: str) -> None:
        """Stop a live run here, or settle a queued one (of `session_id`) as cancelled. Idempotent.

        Raises:
            Conflict: The run is executing in another live process.
        """
        live = self._live.get(run_id)
        if live is not None:
            if not live.cancel_requested:
                live.cancel_requested = True
                async with self.db.session() as session:
                    repository = RunRepository(session)
                    run = await repository.get(run_id)
                    if run is not None:
                        await repository.update_fenced(run_id, run.attempt, {"status": "cancelling"})
                live.token.cancel()
            return
        async with self.db.session() as session:
            repository = RunRepository(session)
            fresh = await repository.get(run_id)
            if fresh is None or fresh.status in TERMINAL_STATUSES:
                return
            if fresh.status != "queued" and not executor_gone(fresh, own_owner=self.owner,
                                                              stale_after_s=self.settings.stale_after_s):
                raise Conflict(f"run '{run_id}' is executing in another server process; cancel it there",
                               code="run_owned_elsewhere")
            await settle_idle_run(repository, fresh, status="cancelled", expected=ACTIVE_STATUSES,
                                  stop_reason="cancelled by the client")
        self.observer.settled(run_id)

    async def _drive(self, session_id: str, user_id: str) -> None:
        """Run the session's queued runs in order, one at a time, each in a slot taken for the session's user. A
        database hiccup is retried with backoff: a driver that died would strand the session's queued runs."""
        failures = 0
        try:
            while True:
                self._wakeups.discard(session_id)
                try:
                    async with self._slots.slot(user_id):
                        claim = await self.db.read_in_thread(
                            lambda connection: ledger.next_queued(connection, session_id, history_limit=HISTORY_LIMIT))
                        taken = claim and await self.db.write_in_thread(
                            lambda connection, run=claim.run: ledger.take(connection, run, self.owner))
                        if claim is not None and taken == "taken":
                            await self._execute(claim)
                            continue
                    failures = 0
                    # Nothing queued, or the session's current run executes elsewhere, whose driver goes on with
                    # the session's queue when it ends.
                    if (claim is None or taken == "session_busy") and session_id not in self._wakeups:
                        return
                except Exception:
                    failures += 1
                    logger.warning("session %s: scheduling failed (%d in a row); retrying", session_id, failures,
                                   exc_info=failures == 1)
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** min(failures, 6)))
        finally:
            self._drivers.pop(session_id, None)
            self.observer.released(session_id)

    async def _execute(self, claim: ledger.QueuedRun) -> None:
        run = claim.run
        channel = self.observer.open(run.id, [
            Event(seq=e["seq"], type=e["type"], data=e["data"], created_at=e["created_at"]) for e in claim.events])
        live = LiveRun(run_id=run.id, session_id=run.session_id)
        live.task = asyncio.current_task()  # type: ignore[assignment]
        self._live[run.id] = live
        recorder = RunRecorder(self.journal, run_id=run.id, attempt=run.attempt, next_seq=run.last_event_seq,
                               channel=channel)
        try:
            await recorder.emit("run.started", {"status": "running", "attempt": run.attempt})
            execution = RunExecution(db=self.db, settings=self.settings, sandbox=self.sandbox, run=run,
                                     recorder=recorder, live=live, content=claim.content,
                                     history=as_model_context(claim.history, run.user_message_id),
                                     events=claim.events, resume=run.checkpoint)
            await execution.execute()
        except StaleAttempt:
            logger.warning("run %s: attempt %s is stale; its writes were refused", run.id, run.attempt)
        except Exception:
            logger.exception("run %s: could not be recorded", run.id)
            await self.journal.drain()
            await fail_run(self.db, run.id, reason="the run could not be recorded")
        finally:
            self._live.pop(run.id, None)
            await channel.close()
            self.observer.discard(run.id)
            self.observer.settled(run.id)

    async def _beat(self) -> None:
        """Heartbeats for live runs, so other processes can tell this executor is alive."""
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            ids = list(self._live)
            if not ids:
                continue
            try:
                await self.db.write_in_thread(lambda connection, ids=ids: ledger.beat(connection, ids, self.owner))
            except Exception:
                logger.warning("heartbeat write failed", exc_info=True)
