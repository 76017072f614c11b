"""Runs across hosts (`run_dispatch = "procrastinate"`): a job queue and notifications in PostgreSQL.

The run ledger (the `run` table, fenced by attempt) stays the source of truth; what crosses hosts is only
signals, carried by two existing, well-kept mechanisms of the database every replica already shares:
- dispatch: a procrastinate job `drive_session(session_id, user_id)` per session with queued runs (at most one
  waiting per session: its queueing lock), taken by one `python -m autobots worker` (`_remote_worker.py`), whose
  `RunEngine.drive` claims the session's runs with `ledger.take`; a redelivered or duplicate job finds the run
  claimed (or the session busy) and does nothing;
- live events: every journal commit NOTIFYs `EVENTS_CHANNEL` with the ids of the runs it wrote; API replicas
  LISTEN and wake their streams and waiters, which read the events from the database (so a stream continued on
  another replica with `Last-Event-ID` has no gap and no duplicate);
- cancel: the API replica writes `cancelling` (fenced) and NOTIFYs `CANCEL_CHANNEL` in the same transaction;
  the executing worker LISTENs and stops the run, and also finds `cancelling` runs it holds at each heartbeat.

Why procrastinate (the spike's figures are in README "Scaling out" and bench/RESULTS.md): asyncio-native like our
engines, PostgreSQL only (which scale-out needs anyway for the ledger), the least CPU per dispatched job among the
candidates measured, and no other service to operate; what it lacks (fencing, requeue of a dead worker's runs) our
ledger has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import procrastinate
import psycopg
from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import ACTIVE_STATUSES, TERMINAL_STATUSES, RunRepository, ledger
from autobots.runs._recovery import executor_gone, settle_idle_run
from autobots.runs._worker import tune_collector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from procrastinate.schema import SchemaManager
from sqlalchemy import text
from sqlalchemy.engine import make_url

logger = logging.getLogger("autobots.runs.dispatch")
QUEUE = "autobots-runs"
DRIVE_TASK = "autobots.drive_session"
EVENTS_CHANNEL = "autobots_run_events"
CANCEL_CHANNEL = "autobots_run_cancel"
# pg_advisory_xact_lock key under which the first process to start creates procrastinate's tables.
SCHEMA_LOCK_KEY = 0x6175746F626F7473 & 0x7FFFFFFFFFFFFFFF
RECONNECT_S = (0.2, 0.5, 1.0, 2.0, 5.0)


def libpq_url(database_url: str) -> str:
    """The database URL as libpq takes it (no SQLAlchemy driver suffix)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def session_lock(session_id: str) -> str:
    return f"session:{session_id}"


async def ensure_schema(conninfo: str) -> None:
    """Create procrastinate's tables unless they exist; one process does it however many start at once."""
    async with await psycopg.AsyncConnection.connect(conninfo) as connection, connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        found = await (await connection.execute("SELECT to_regclass('procrastinate_jobs')")).fetchone()
        if found is None or found[0] is None:
            await connection.execute(SchemaManager.get_schema())


class Dispatcher:
    """The procrastinate app of this process: defers `drive_session` jobs, and in a worker runs them.

    Args:
        database_url: The PostgreSQL database holding the ledger and the job queue.
        drive: In a worker, what executes a session's queued runs (`RunEngine.drive`); None in an API replica.
    """

    def __init__(self, database_url: str, drive: Callable[[str, str], Awaitable[None]] | None = None) -> None:
        self.conninfo = libpq_url(database_url)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.conninfo,
                                                                              min_size=1, max_size=4))
        self._drive = drive
        self.task = self.app.task(name=DRIVE_TASK, queue=QUEUE, pass_context=False)(self._run_job)

    async def _run_job(self, session_id: str, user_id: str) -> None:
        if self._drive is None:
            raise RuntimeError("this process executes no runs")
        await self._drive(session_id, user_id)

    async def open(self) -> None:
        await ensure_schema(self.conninfo)
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def defer(self, session_id: str, user_id: str) -> bool:
        """Ask a worker to drive the session; False when a job for it is waiting already (that one will)."""
        try:
            await self.task.configure(queueing_lock=session_lock(session_id)).defer_async(
                session_id=session_id, user_id=user_id)
        except AlreadyEnqueued:
            return False
        return True

    async def waiting_sessions(self) -> set[str]:
        """Sessions with a job waiting for a worker (read on the app's pool: recovery asks every heartbeat)."""
        rows = await self.app.connector.execute_query_all_async(
            "SELECT queueing_lock FROM procrastinate_jobs WHERE queue_name = %(queue)s AND status = 'todo'",
            queue=QUEUE)
        return {row["queueing_lock"].removeprefix("session:") for row in rows if row["queueing_lock"]}

    async def fail_stalled_jobs(self, stale_after_s: float) -> int:
        """Jobs held by workers whose heartbeat stopped: marked failed, so the queue tells the truth (their runs
        are requeued by the ledger's recovery, which defers fresh jobs)."""
        stalled = list(await self.app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=stale_after_s))
        for job in stalled:
            await self.app.job_manager.finish_job(job, status=Status.FAILED, delete_job=True)
        return len(stalled)

    async def run_worker(self, *, concurrency: int, settings: Settings) -> None:
        await self.app.run_worker_async(
            queues=[QUEUE], concurrency=concurrency, install_signal_handlers=False, delete_jobs="always",
            update_heartbeat_interval=settings.heartbeat_s, stalled_worker_timeout=settings.stale_after_s,
            listen_notify=True, wait=True)


class Listener:
    """One LISTEN connection for the given channels; reconnects (with backoff) until closed.

    Args:
        conninfo: libpq URL.
        handlers: By channel, what to call with each notification's payload (on the event loop, must not block).
        on_reconnect: Called after a reconnection, when notifications may have been missed.
    """

    def __init__(self, conninfo: str, handlers: dict[str, Callable[[str], None]],
                 on_reconnect: Callable[[], None] | None = None) -> None:
        self.conninfo = conninfo
        self.handlers = handlers
        self.on_reconnect = on_reconnect
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="run-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as connection:
                    for channel in self.handlers:
                        await connection.execute(f'LISTEN "{channel}"')
                    self.connected.set()
                    if failures and self.on_reconnect is not None:
                        self.on_reconnect()
                    failures = 0
                    async for notification in connection.notifies():
                        handler = self.handlers.get(notification.channel)
                        if handler is not None:
                            handler(notification.payload)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.connected.clear()
                logger.warning("run listener: connection lost; reconnecting", exc_info=failures == 0)
                await asyncio.sleep(RECONNECT_S[min(failures, len(RECONNECT_S) - 1)])
                failures += 1


class DispatchedRuns:
    """The runner of an API replica whose runs execute in `python -m autobots worker` processes.

    Args:
        db: The database (PostgreSQL).
        settings: Server settings.
        settled: Called with a run id when the run may have changed (a notification): wakes this replica's
            waiters and streams of it.
    """

    def __init__(self, db: Database, settings: Settings, settled: Callable[[str], None],
                 on_reconnect: Callable[[], None]) -> None:
        self.db = db
        self.settings = settings
        self.dispatcher = Dispatcher(settings.database_url)
        self.listener = Listener(self.dispatcher.conninfo, {EVENTS_CHANNEL: settled}, on_reconnect=on_reconnect)
        self._defers: set[asyncio.Task[None]] = set()

    def holds(self, run_id: str) -> bool:
        return False

    @property
    def live_count(self) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        return {"ok": self.listener.connected.is_set(), "executor": "procrastinate", "queue": QUEUE}

    async def start(self) -> None:
        await self.dispatcher.open()
        self.listener.start()
        tune_collector()  # as a WorkerPool does when it starts: the API replica's heap is built by now

    async def shutdown(self) -> None:
        """Stop listening; runs go on in their workers, and deferred jobs stay queued."""
        if self._defers:
            await asyncio.wait(self._defers, timeout=5)
        await self.listener.stop()
        await self.dispatcher.close()

    def kick(self, session_id: str, user_id: str) -> None:
        task = asyncio.create_task(self._defer(session_id, user_id), name=f"defer-{session_id}")
        self._defers.add(task)
        task.add_done_callback(self._defers.discard)

    async def _defer(self, session_id: str, user_id: str) -> None:
        try:
            await self.dispatcher.defer(session_id, user_id)
        except Exception:  # the recovery loop defers it again (`kick_queued`)
            logger.warning("session %s: could not dispatch its runs; retrying later", session_id, exc_info=True)

    async def kick_queued(self, sessions: Iterable[tuple[str, str]]) -> None:
        """Dispatch the sessions with queued runs that have no job waiting and no run executing (whose driver
        goes on with the queue); first fail the jobs of dead workers."""
        await self.dispatcher.fail_stalled_jobs(self.settings.stale_after_s)
        waiting = await self.dispatcher.waiting_sessions()
        active = await self.db.read_in_thread(lambda connection: ledger.run_heads(connection, ledger.EXECUTING))
        busy = {run.session_id for run in active}
        for session_id, user_id in sessions:
            if session_id not in waiting and session_id not in busy:
                await self._defer(session_id, user_id)

    async def cancel(self, run_id: str, session_id: str) -> None:
        """Settle a queued run (or one whose executor is gone) as cancelled; ask the worker executing a running
        one to stop it: `cancelling`, and a NOTIFY it listens for, in one transaction. Idempotent."""
        async with self.db.session() as session:
            repository = RunRepository(session)
            fresh = await repository.get(run_id)
            if fresh is None or fresh.status in TERMINAL_STATUSES:
                return
            if fresh.status == "queued" or executor_gone(fresh, own_owner="",
                                                         stale_after_s=self.settings.stale_after_s):
                await settle_idle_run(repository, fresh, status="cancelled", expected=ACTIVE_STATUSES,
                                      stop_reason="cancelled by the client", owner_gone=fresh.status != "queued")
                await _notify(session, EVENTS_CHANNEL, run_id)
                return
            if fresh.status == "running":
                await repository.update_fenced(run_id, fresh.attempt, {"status": "cancelling"}, status=("running",))
            await _notify(session, CANCEL_CHANNEL, run_id)


async def _notify(session: Any, channel: str, payload: str) -> None:
    await session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})

