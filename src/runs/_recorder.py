"""Writes of one run attempt: live followers see events at once, the journal makes them durable."""

from __future__ import annotations

import asyncio
from typing import Any

from autobots.db.tables import Message, now
from autobots.runs._channel import Event, RunChannel
from autobots.runs._journal import JournalWrite, RunJournal, StaleAttempt

__all__ = ["RunRecorder", "StaleAttempt"]


class RunRecorder:
    """Numbers and records the events of one attempt. A write that the journal refused (a stale attempt) or
    could not commit is raised at the next `emit`, so the executor stops."""

    def __init__(self, journal: RunJournal, *, run_id: str, attempt: int, next_seq: int, channel: RunChannel) -> None:
        self.journal = journal
        self.run_id = run_id
        self.attempt = attempt
        self.seq = next_seq
        self.channel = channel
        self._unconfirmed: list[asyncio.Future[None]] = []

    @property
    def next_seq(self) -> int:
        """The sequence number the next event will get."""
        return self.seq + 1

    async def emit(self, type: str, data: dict[str, Any], *, run_values: dict[str, Any] | None = None) -> None:
        await self.emit_many([(type, data)], run_values=run_values)

    async def emit_many(self, events: list[tuple[str, dict[str, Any]]], *, run_values: dict[str, Any] | None = None,
                        message: Message | None = None, durable: bool = False) -> None:
        """Record events (and run fields, and a message). `durable` waits until they are committed."""
        self._raise_earlier_failure()
        rows = []
        for type, data in events:
            self.seq += 1
            rows.append(Event(seq=self.seq, type=type, data=data, created_at=now()))
        values = {"last_event_seq": self.seq, **(run_values or {})}
        done = self.journal.submit(JournalWrite(run_id=self.run_id, attempt=self.attempt, events=rows,
                                                run_values=values, message=message, urgent=durable))
        if durable:
            # Followers must not see the end of a run before the database has it.
            await done
            self._unconfirmed.clear()
        else:
            self._unconfirmed.append(done)
        for row in rows:
            await self.channel.append(row)

    def _raise_earlier_failure(self) -> None:
        still_open = []
        for future in self._unconfirmed:
            if not future.done():
                still_open.append(future)
            elif future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._unconfirmed = still_open
