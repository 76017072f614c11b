"""Durable writes for one run attempt. Every write is fenced by the attempt number."""

from __future__ import annotations

import time
from typing import Any

from autobots.db import Database
from autobots.db.repositories import RunRepository
from autobots.db.tables import Message, RunEvent, now
from autobots.runs._channel import Event, RunChannel


class StaleAttempt(Exception):
    """The run moved on to another attempt (or was finished elsewhere): this executor must stop writing."""


class RunRecorder:
    """Appends events (database first, then the live channel) and finishes the run, for one attempt."""

    def __init__(self, db: Database, *, run_id: str, attempt: int, next_seq: int, channel: RunChannel) -> None:
        self.db = db
        self.run_id = run_id
        self.attempt = attempt
        self.seq = next_seq
        self.channel = channel

    def _event(self, type: str, data: dict[str, Any]) -> RunEvent:
        self.seq += 1
        return RunEvent(run_id=self.run_id, seq=self.seq, type=type, data=data, created_at=now())

    async def emit(self, type: str, data: dict[str, Any], *, run_values: dict[str, Any] | None = None) -> None:
        await self.emit_many([(type, data)], run_values=run_values)

    async def emit_many(self, events: list[tuple[str, dict[str, Any]]], *, run_values: dict[str, Any] | None = None,
                        message: Message | None = None) -> None:
        """Write events (and optionally run fields and a message) in one fenced transaction."""
        start_seq = self.seq
        rows = [self._event(type, data) for type, data in events]
        values = {"last_event_seq": self.seq, "heartbeat_at": time.time(), **(run_values or {})}
        try:
            async with self.db.session() as session:
                repository = RunRepository(session)
                if not await repository.update_fenced(self.run_id, self.attempt, values):
                    raise StaleAttempt(self.run_id)
                if message is not None:
                    session.add(message)
                await repository.add_events(rows)
        except BaseException:
            self.seq = start_seq
            raise
        for row in rows:
            await self.channel.append(Event(seq=row.seq, type=row.type, data=row.data or {}, created_at=row.created_at))
