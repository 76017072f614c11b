"""The run journal (`runs/_journal.py`, fed by `runs/_recorder.py`): writes of many runs are committed together in
few transactions, a stale attempt's writes fail without holding back the others, and a run's end is in the
database before anyone following the run sees it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories import TERMINAL_STATUSES, fetch_one
from autobots.db.tables import Run, RunEvent, now
from autobots.runs import _journal
from autobots.runs._channel import Event
from autobots.runs._engine import RunEngine
from autobots.runs._journal import JournalWrite, RunJournal, StaleAttempt
from autobots.runs._recovery import requeue_or_fail
from sqlalchemy import Connection

from tests.support.ledger import claim_next, create_chat, dead_owner, queue_run, read_events, read_run
from tests.support.specs import autonomous_spec, sequential_spec

T = TypeVar("T")


class CountingDatabase(Database):
    """The database, counting the transactions of its writer thread (one per `write_in_thread`)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.write_transactions = 0

    async def write_in_thread(self, work: Callable[[Connection], T]) -> T:
        self.write_transactions += 1
        return await super().write_in_thread(work)


def message(seq: int) -> Event:
    return Event(seq=seq, type="message", data={"source": "coder", "content": f"#{seq}"}, created_at=now())


async def running_runs(db: Database, count: int) -> list[Run]:
    """`count` runs, each of its own session, claimed as their first attempt."""
    runs = []
    for _ in range(count):
        chat = await create_chat(db, autonomous_spec())
        await queue_run(db, chat)
        runs.append(await claim_next(db, chat, "executor"))
    return runs


class TestGroupCommit:
    async def test_writes_of_several_runs_pending_together_are_committed_in_one_transaction(
            self, database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        """Two runs' writes arrive while the journal lingers, then a third run's end, which is urgent: all three
        are committed at once, in one transaction."""
        monkeypatch.setattr(_journal, "LINGER_S", 60.0)  # only the urgent write can close this group
        counting = CountingDatabase(database_url)
        runs = await running_runs(db, 3)
        journal = RunJournal(counting)
        journal.start()
        try:
            done = []
            for run in runs[:2]:
                done.append(journal.submit(JournalWrite(run_id=run.id, attempt=1, events=[message(2)],
                                                        run_values={"last_event_seq": 2})))
                await asyncio.sleep(0.01)
            ended = [Event(seq=2, type="run.completed", data={"status": "completed"}, created_at=now()),
                     Event(seq=3, type="done", data={"status": "completed"}, created_at=now())]
            done.append(journal.submit(JournalWrite(run_id=runs[2].id, attempt=1, events=ended, urgent=True,
                                                    run_values={"status": "completed", "last_event_seq": 3})))
            await asyncio.wait_for(asyncio.gather(*done), timeout=10)
            assert counting.write_transactions == 1
        finally:
            await journal.stop()
            await counting.dispose()
        for run in runs[:2]:
            assert (await read_run(db, run.id)).last_event_seq == 2
            assert [e.type for e in await read_events(db, run.id)] == ["run.queued", "message"]
        assert (await read_run(db, runs[2].id)).status == "completed"
        assert [e.type for e in await read_events(db, runs[2].id)] == ["run.queued", "run.completed", "done"]

    async def test_a_stale_attempts_write_fails_alone(self, db: Database) -> None:
        """In one group: a write of a run's first attempt, which lost the run to a second one meanwhile, and a
        write of another run. The first fails with `StaleAttempt`, the other is committed."""
        [current] = await running_runs(db, 1)
        chat = await create_chat(db, autonomous_spec())
        lost = await queue_run(db, chat)
        await claim_next(db, chat, dead_owner())
        await requeue_or_fail(db, lost.id, reason="its executor went silent")
        await claim_next(db, chat, "executor")
        journal = RunJournal(db)
        stale = journal.submit(JournalWrite(run_id=lost.id, attempt=1, events=[message(3)],
                                            run_values={"last_event_seq": 3}))
        kept = journal.submit(JournalWrite(run_id=current.id, attempt=1, events=[message(2)],
                                           run_values={"last_event_seq": 2}, urgent=True))
        try:
            await kept
            with pytest.raises(StaleAttempt):
                await stale
        finally:
            await journal.stop()
        assert [e.type for e in await read_events(db, current.id)] == ["run.queued", "message"]
        assert [e.type for e in await read_events(db, lost.id)] == ["run.queued", "run.queued"]


class CommittedWhenSeen:
    """A `RunObserver` whose live sinks check, as each event is announced to followers, whether the database
    has it (and the run's status) already."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.seen: list[tuple[str, bool, str]] = []
        self.ended = asyncio.Event()

    def open(self, run_id: str, initial: list[Event]) -> CommittedWhenSeen.Sink:
        return self.Sink(self, run_id)

    def discard(self, run_id: str) -> None:
        pass

    def settled(self, run_id: str) -> None:
        self.ended.set()

    def released(self, session_id: str) -> None:
        pass

    class Sink:
        def __init__(self, observer: CommittedWhenSeen, run_id: str) -> None:
            self.observer, self.run_id = observer, run_id

        async def append(self, event: Event) -> None:
            def read(connection: Connection) -> tuple[Any, Any]:
                row = fetch_one(connection, RunEvent, RunEvent.run_id == self.run_id, RunEvent.seq == event.seq)
                return row, fetch_one(connection, Run, Run.id == self.run_id)

            row, run = await self.observer.db.read_in_thread(read)
            self.observer.seen.append((event.type, row is not None, run.status))

        async def close(self) -> None:
            pass


class TestRunEnd:
    async def test_a_runs_end_is_committed_before_followers_see_it(self, db: Database, settings: Settings) -> None:
        chat = await create_chat(db, sequential_spec())
        run = await queue_run(db, chat, "write about otters")
        observer = CommittedWhenSeen(db)
        engine = RunEngine(db, settings, None, observer, max_concurrent=1)
        await engine.start()
        try:
            engine.kick(chat.id, chat.user_id)
            await asyncio.wait_for(observer.ended.wait(), timeout=60)
        finally:
            await engine.shutdown()
        finished = await read_run(db, run.id)
        assert finished.status in TERMINAL_STATUSES and finished.reply_message_id is not None
        assert observer.seen[0][0] == "run.started" and len(observer.seen) > 3
        assert observer.seen[-2:] == [(f"run.{finished.status}", True, finished.status),
                                      ("done", True, finished.status)]
