"""The run ledger (`db/repositories/ledger.py`, `runs/_recovery.py`): what submitting, claiming, writing and
requeueing a run may and may not do to its row, on a database of the test's own."""

from __future__ import annotations

from autobots.db import Database
from autobots.db.repositories import RunRepository, ledger
from autobots.db.tables import Message, new_id, now
from autobots.runs._recovery import requeue_or_fail

from tests.support.ledger import (
    apply,
    claim_next,
    create_chat,
    dead_owner,
    next_queued,
    queue_run,
    read_events,
    read_messages,
    read_run,
    submission,
    take,
)
from tests.support.specs import autonomous_spec


def event(run_id: str, seq: int, type: str = "message") -> dict:
    return {"run_id": run_id, "seq": seq, "type": type, "data": {"source": "coder", "content": f"#{seq}"},
            "created_at": now()}


class TestInsertSubmissions:
    async def test_a_batch_counts_the_runs_it_writes_against_each_users_quota(self, db: Database) -> None:
        mine = await create_chat(db, autonomous_spec())
        theirs = await create_chat(db, autonomous_spec(), user_name="bob")
        await db.write_in_thread(lambda connection: ledger.insert_submissions(
            connection, [submission(mine, "already queued")], max_active_per_user=3))
        batch = [submission(mine, "1"), submission(theirs, "1"), submission(mine, "2"), submission(mine, "3"),
                 submission(theirs, "2")]
        outcomes = await db.write_in_thread(lambda connection: ledger.insert_submissions(
            connection, batch, max_active_per_user=3))
        assert outcomes == [None, None, None, ledger.Refusal(active_runs=3), None]
        counted = await db.read_in_thread(lambda connection: ledger.active_runs_by_user(
            connection, {mine.user_id, theirs.user_id}))
        assert counted == {mine.user_id: 3, theirs.user_id: 2}


class TestClaim:
    async def test_the_oldest_queued_run_is_claimed_as_its_first_attempt(self, db: Database) -> None:
        chat = await create_chat(db, autonomous_spec())
        first = await queue_run(db, chat, "first")
        second = await queue_run(db, chat, "second")
        claim = await next_queued(db, chat)
        assert claim is not None
        assert (claim.run.id, claim.content) == (first.id, "first")
        assert [e["type"] for e in claim.events] == ["run.queued"]
        assert await take(db, claim.run, "executor-a") == "taken"
        row = await read_run(db, first.id)
        assert (row.status, row.attempt, row.owner) == ("running", 1, "executor-a")
        assert row.started_at is not None and row.heartbeat_at is not None
        after = await next_queued(db, chat)
        assert after is not None and after.run.id == second.id

    async def test_a_run_read_by_two_executors_is_claimed_by_one(self, db: Database) -> None:
        chat = await create_chat(db, autonomous_spec())
        run = await queue_run(db, chat)
        read_by_a, read_by_b = await next_queued(db, chat), await next_queued(db, chat)
        assert read_by_a is not None and read_by_b is not None
        assert await take(db, read_by_a.run, "executor-a") == "taken"
        assert await take(db, read_by_b.run, "executor-b") == "moved_on"
        row = await read_run(db, run.id)
        assert (row.status, row.attempt, row.owner) == ("running", 1, "executor-a")


    async def test_a_queued_run_is_not_claimed_while_its_session_runs_another(self, db: Database) -> None:
        """Two executors on two hosts, each driving the session: the second run waits for the first."""
        chat = await create_chat(db, autonomous_spec())
        first = await queue_run(db, chat, "first")
        second = await queue_run(db, chat, "second")
        await claim_next(db, chat, "executor-a")
        claim = await next_queued(db, chat)
        assert claim is not None and claim.run.id == second.id
        assert await take(db, claim.run, "executor-b") == "session_busy"
        assert (await read_run(db, second.id)).status == "queued"
        assert (await read_run(db, first.id)).owner == "executor-a"


class TestFencing:
    async def test_a_stale_attempts_writes_are_refused_and_the_current_ones_kept(self, db: Database) -> None:
        """Attempt 1 lost the run (requeued, claimed again as attempt 2) but still writes: in the same group as
        attempt 2's writes, its run fields, events and reply are refused; attempt 2's are committed."""
        chat = await create_chat(db, autonomous_spec())
        run = await queue_run(db, chat)
        await claim_next(db, chat, dead_owner())
        await requeue_or_fail(db, run.id, reason="its server stopped")
        current = await claim_next(db, chat, "executor-b")
        assert current.attempt == 2
        next_seq = current.last_event_seq + 1
        late_reply = Message(id=new_id("msg"), session_id=chat.id, user_id=chat.user_id, run_id=run.id,
                             role="assistant", content="late")
        stale = await apply(
            db,
            ledger.RunWrites(run.id, 1, values={"status": "completed", "last_event_seq": next_seq + 1},
                             events=[event(run.id, next_seq + 1, "run.completed")], messages=[late_reply]),
            ledger.RunWrites(run.id, 2, values={"last_event_seq": next_seq}, events=[event(run.id, next_seq)]))
        assert stale == {(run.id, 1)}
        row = await read_run(db, run.id)
        assert (row.status, row.attempt, row.owner, row.last_event_seq) == ("running", 2, "executor-b", next_seq)
        assert [e.type for e in await read_events(db, run.id)] == ["run.queued", "run.queued", "message"]
        assert [m.content for m in await read_messages(db, chat.id)] == ["hello"]

    async def test_a_stale_attempts_status_change_is_refused(self, db: Database) -> None:
        chat = await create_chat(db, autonomous_spec())
        run = await queue_run(db, chat)
        await claim_next(db, chat, dead_owner())
        await requeue_or_fail(db, run.id, reason="its server stopped")
        await claim_next(db, chat, "executor-b")
        async with db.session() as session:
            repository = RunRepository(session)
            assert not await repository.update_fenced(run.id, 1, {"status": "cancelling"})
            assert await repository.update_fenced(run.id, 2, {"status": "cancelling"})
        assert (await read_run(db, run.id)).status == "cancelling"


class TestRequeue:
    async def test_an_interrupted_run_is_queued_again_and_claimed_as_its_next_attempt(self, db: Database) -> None:
        chat = await create_chat(db, autonomous_spec())
        run = await queue_run(db, chat)
        await claim_next(db, chat, dead_owner())
        checkpoint = {"team": {"state": "after the first message"}, "message_seqs": [2]}
        assert not await apply(db, ledger.RunWrites(run.id, 1, values={"last_event_seq": 2, "checkpoint": checkpoint},
                                                    events=[event(run.id, 2)]))
        await requeue_or_fail(db, run.id, reason="its server stopped")
        row = await read_run(db, run.id)
        assert (row.status, row.attempt, row.owner, row.checkpoint) == ("queued", 1, None, checkpoint)
        last = (await read_events(db, run.id))[-1]
        assert (last.seq, last.type) == (3, "run.queued")
        assert last.data == {"status": "queued", "reason": "its server stopped; it resumes from its last checkpoint"}
        claim = await next_queued(db, chat)
        assert claim is not None and await take(db, claim.run, "executor-b") == "taken"
        assert (claim.run.attempt, claim.run.checkpoint, claim.run.last_event_seq) == (2, checkpoint, 3)
        assert (await read_run(db, run.id)).attempt == 2

    async def test_a_run_that_ended_meanwhile_stays_as_it_is(self, db: Database) -> None:
        chat = await create_chat(db, autonomous_spec())
        run = await queue_run(db, chat)
        await claim_next(db, chat, dead_owner())
        assert not await apply(db, ledger.RunWrites(run.id, 1, values={"status": "completed", "last_event_seq": 3},
                                                    events=[event(run.id, 2, "run.completed"),
                                                            event(run.id, 3, "done")]))
        await requeue_or_fail(db, run.id, reason="its server stopped")
        row = await read_run(db, run.id)
        assert (row.status, row.attempt, row.last_event_seq) == ("completed", 1, 3)
        assert [e.type for e in await read_events(db, run.id)] == ["run.queued", "run.completed", "done"]
