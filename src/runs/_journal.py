"""The run journal: one writer per process that commits run events in groups.

Executors hand their writes over and go on (live followers read from memory); the journal commits
whatever has accumulated in one transaction, at most `LINGER_S` after the first write of a group, then the
next group: the database sees a few transactions per second instead of one per agent message. Urgent
writes (a run's end, which the executor awaits) are committed at once, with whatever is pending. Every
group's run updates are fenced by attempt.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from autobots.db import Database
from autobots.db.repositories import ledger
from autobots.db.tables import Message
from autobots.runs._channel import Event
from autobots.sessions.message_cache import message_cache
from sqlalchemy import Connection

logger = logging.getLogger("autobots.runs")
# Each group's commit runs on the writer thread, which competes for the interpreter with the teams on the event
# loop: a commit costs the loop far more than its own CPU, so fewer, larger groups are cheaper per message.
LINGER_S = 0.2


class StaleAttempt(Exception):
    """The run moved on to another attempt (or was finished elsewhere): this executor must stop writing."""


@dataclass
class JournalWrite:
    run_id: str
    attempt: int
    events: list[Event]
    run_values: dict[str, Any]
    message: Message | None = None
    urgent: bool = False
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class RunJournal:
    """Args:
        db: The database.
        notify_channel: When set, each group's transaction also NOTIFYs this PostgreSQL channel with the id of
            every run it wrote, delivered as it commits (`run_dispatch = "procrastinate"`: API replicas on other
            hosts follow the runs this process executes).
    """

    def __init__(self, db: Database, notify_channel: str | None = None) -> None:
        self.db = db
        self.notify_channel = notify_channel
        self._pending: list[JournalWrite] = []
        self._wakeup = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="run-journal")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        if self._task is None:
            return
        await self.drain()
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    def submit(self, write: JournalWrite) -> asyncio.Future[None]:
        """Queue a write; the returned future resolves once it is committed (or fails with its error)."""
        write.done.add_done_callback(_consume_exception)
        self._idle.clear()
        self._pending.append(write)
        if write.urgent:
            self._urgent.set()
        self._wakeup.set()
        if self._task is None:
            self.start()
        return write.done

    async def _loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._urgent.is_set():
                linger = asyncio.get_running_loop().call_later(LINGER_S, self._urgent.set)
                try:
                    await self._urgent.wait()
                finally:
                    linger.cancel()
            self._urgent.clear()
            while self._pending:
                await self._flush()
            self._idle.set()

    async def drain(self) -> None:
        """Until every write submitted so far is committed (or failed)."""
        self._urgent.set()
        await self._idle.wait()

    async def _flush(self) -> None:
        group, self._pending = self._pending, []
        try:
            stale = await self._commit(group)
        except Exception as exc:
            logger.warning("run journal: a group of %d writes failed: %s", len(group), type(exc).__name__)
            for write in group:
                if not write.done.done():
                    write.done.set_exception(exc)
            return
        for write in group:
            if write.done.done():
                continue
            if (write.run_id, write.attempt) in stale:
                write.done.set_exception(StaleAttempt(write.run_id))
            else:
                write.done.set_result(None)

    async def _commit(self, group: list[JournalWrite]) -> set[tuple[str, int]]:
        """One transaction for the group, on the database's writer thread; returns the stale (run, attempt)s."""
        by_attempt: dict[tuple[str, int], ledger.RunWrites] = {}
        for write in group:
            writes = by_attempt.setdefault((write.run_id, write.attempt), ledger.RunWrites(write.run_id, write.attempt))
            writes.values.update(write.run_values)
            writes.events.extend({"run_id": write.run_id, "seq": e.seq, "type": e.type, "data": e.data,
                                  "created_at": e.created_at} for e in write.events)
            if write.message is not None:
                writes.messages.append(write.message)
        batches = list(by_attempt.values())
        channel = self.notify_channel

        def write(connection: Connection) -> set[tuple[str, int]]:
            stale = ledger.apply_run_writes(connection, batches)
            if channel is not None:
                ledger.notify(connection, channel, sorted({b.run_id for b in batches if (b.run_id, b.attempt)
                                                           not in stale}))
            return stale

        stale = await self.db.write_in_thread(write)
        for session_id in {write.message.session_id for write in group
                           if write.message is not None and (write.run_id, write.attempt) not in stale}:
            message_cache.invalidate(session_id)
        return stale


def _consume_exception(future: asyncio.Future[None]) -> None:
    """Writers that do not await their future must not produce 'exception never retrieved' noise."""
    if not future.cancelled():
        future.exception()
