"""`python -m autobots worker`: a run worker for `run_dispatch = "procrastinate"`, on any host.

It takes `drive_session` jobs from the database's queue (`_dispatch.py`) and executes the sessions' runs with
its own `RunEngine`, whose journal NOTIFYs the runs it writes, so that the API replicas stream them. It stops
the runs whose cancel an API replica recorded (a NOTIFY, and a look at each heartbeat). On SIGTERM or SIGINT it
stops taking jobs and interrupts its runs, which go back to the queue and resume elsewhere from their checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import ledger
from autobots.runs._channel import Event
from autobots.runs._dispatch import CANCEL_CHANNEL, EVENTS_CHANNEL, Dispatcher, Listener
from autobots.runs._engine import LiveSink, RunEngine
from autobots.runs._worker import SWITCH_INTERVAL_S, _loop_factory, tune_collector

logger = logging.getLogger("autobots.runs.workers")


class _NoSink:
    """Live events need no carrier here: API replicas read them from the database when notified."""

    async def append(self, event: Event) -> None:
        return None

    async def close(self) -> None:
        return None


class _Detached:
    """The `RunObserver` of a remote worker: its followers are on other hosts, reached through the database."""

    def open(self, run_id: str, initial: list[Event]) -> LiveSink:
        return _NoSink()

    def discard(self, run_id: str) -> None:
        return None

    def settled(self, run_id: str) -> None:
        return None

    def released(self, session_id: str) -> None:
        return None


def run_remote_worker(settings: Settings) -> int:
    """The body of `python -m autobots worker` (run_dispatch `procrastinate`)."""
    if settings.run_dispatch != "procrastinate":
        print("autobots worker: set run_dispatch to 'procrastinate' (AUTOBOTS_RUN_DISPATCH) and database_url to the "
              "PostgreSQL database the API servers use; with the embedded dispatch, `serve` starts its own workers",
              file=sys.stderr)
        return 2
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(settings))


async def _serve(settings: Settings) -> int:
    from autobots import models
    from autobots.db import migrate_to_head, redacted_url
    from autobots.sandbox import SandboxManager
    from autobots.sessions.message_cache import message_cache

    await asyncio.to_thread(migrate_to_head, settings.database_url)
    message_cache.enabled = False
    db = Database(settings.database_url)
    await db.start_writer_thread()
    sandbox = SandboxManager(settings)
    await sandbox.start()
    for provider in {"openai", models.resolve_default_model(settings).provider}:
        models.preload(provider)
    engine = RunEngine(db, settings, sandbox, _Detached(), max_concurrent=settings.max_concurrent_runs,
                       events_channel=EVENTS_CHANNEL)
    dispatcher = Dispatcher(settings.database_url, drive=engine.drive)
    await dispatcher.open()
    await engine.start()
    listener = Listener(dispatcher.conninfo, {CANCEL_CHANNEL: engine.cancel_live})
    listener.start()
    tune_collector()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    jobs = asyncio.create_task(dispatcher.run_worker(concurrency=settings.max_concurrent_runs, settings=settings),
                               name="procrastinate-worker")
    sweeper = asyncio.create_task(_sweep_cancels(db, engine, settings.heartbeat_s), name="cancel-sweep")
    logger.info("run worker %s: taking runs from %s", engine.owner, redacted_url(settings.database_url))
    await asyncio.wait([jobs, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    if jobs.done() and not jobs.cancelled() and jobs.exception() is not None:
        logger.error("run worker: the job queue failed", exc_info=jobs.exception())
    sweeper.cancel()
    try:
        await engine.shutdown()  # interrupted runs are requeued before the jobs end
    finally:
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await jobs
        await listener.stop()
        await dispatcher.close()
        await sandbox.stop()
        await db.dispose()
    return 0


async def _sweep_cancels(db: Database, engine: RunEngine, every_s: float) -> None:
    """Stop the runs held here whose status says `cancelling` (a cancel whose NOTIFY was missed)."""
    while True:
        await asyncio.sleep(every_s)
        held = set(engine.live_ids())
        if not held:
            continue
        try:
            cancelling = await db.read_in_thread(lambda connection: ledger.run_heads(connection, ("cancelling",)))
        except Exception:
            logger.warning("cancel sweep failed", exc_info=True)
            continue
        for run in cancelling:
            if run.id in held:
                engine.cancel_live(run.id)
