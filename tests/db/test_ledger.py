"""The run ledger's submission writes: the per-user active-run quota, counted in the transaction that inserts."""

from __future__ import annotations

from autobots.db.repositories import ledger
from autobots.db.tables import Message, Run, RunEvent, new_id, now

from tests.conftest import create_session

BOB = {"X-User-Id": "bob"}


def submission(session: dict, content: str) -> ledger.Submission:
    """A user message with its queued run, as `RunManager.submit` builds them."""
    message = Message(id=new_id("msg"), session_id=session["id"], user_id=session["user_id"], role="user",
                      content=content)
    run = Run(id=new_id("run"), session_id=session["id"], user_id=session["user_id"],
              workflow_id=session["workflow_id"], user_message_id=message.id, status="queued", last_event_seq=1)
    message.run_id = run.id
    queued = RunEvent(run_id=run.id, seq=1, type="run.queued", data={"status": "queued"}, created_at=now())
    return ledger.Submission(message, run, queued, enqueue=True)


async def test_a_batch_counts_the_runs_it_writes_against_each_users_quota(client, app):
    db = app.state.services.db
    mine, theirs = await create_session(client), await create_session(client, headers=BOB)
    await db.write_in_thread(lambda connection: ledger.insert_submissions(
        connection, [submission(mine, "already queued")], max_active_per_user=3))
    batch = [submission(mine, "1"), submission(theirs, "1"), submission(mine, "2"), submission(mine, "3"),
             submission(theirs, "2")]
    outcomes = await db.write_in_thread(lambda connection: ledger.insert_submissions(
        connection, batch, max_active_per_user=3))
    assert outcomes == [None, None, None, ledger.Refusal(active_runs=3), None]
    counted = await db.read_in_thread(lambda connection: ledger.active_runs_by_user(
        connection, {mine["user_id"], theirs["user_id"]}))
    assert counted == {mine["user_id"]: 3, theirs["user_id"]: 2}
