"""Rows of the run ledger for engine tests, written as the API writes them: a user's session on a workflow, its
queued runs (through `ledger.insert_submissions`, as `RunManager.submit` does), and reads of what came of them."""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

from autobots.db import Database
from autobots.db.repositories import fetch_one, ledger
from autobots.db.tables import ChatSession, Message, Run, RunEvent, User, Workflow, new_id, now
from autobots.workflows.schemas import WorkflowSpec
from autobots.workflows.secrets import redact_spec
from sqlalchemy import Connection, insert
from sqlmodel import Session, select


async def create_chat(db: Database, spec: dict[str, Any], *, user_name: str = "alice") -> ChatSession:
    """A session of `user_name` (created if needed) on a new workflow of `spec`."""
    stored = redact_spec(WorkflowSpec.model_validate(spec))

    def write(connection: Connection) -> ChatSession:
        user_id = connection.execute(select(User.id).where(User.name == user_name)).scalar()
        if user_id is None:
            user_id = new_id("usr")
            connection.execute(insert(User).values(id=user_id, name=user_name, created_at=now()))
        workflow = Workflow(id=new_id("wf"), user_id=user_id, name=stored["name"], type=stored["type"], spec=stored)
        chat = ChatSession(id=new_id("ses"), user_id=user_id, workflow_id=workflow.id)
        connection.execute(insert(Workflow).values(**workflow.model_dump(exclude={"pk"})))
        connection.execute(insert(ChatSession).values(**chat.model_dump(exclude={"pk"})))
        return chat

    return await db.write_in_thread(write)


def submission(chat: ChatSession, content: str, *, enqueue: bool = True) -> ledger.Submission:
    """A user message with its queued run and the run's first event, as `RunManager.submit` builds them."""
    message = Message(id=new_id("msg"), session_id=chat.id, user_id=chat.user_id, role="user", content=content)
    run = Run(id=new_id("run"), session_id=chat.id, user_id=chat.user_id, workflow_id=chat.workflow_id,
              user_message_id=message.id, status="queued", last_event_seq=1,
              usage={"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    message.run_id = run.id
    queued = RunEvent(run_id=run.id, seq=1, type="run.queued", data={"status": "queued"}, created_at=now())
    return ledger.Submission(message, run, queued, enqueue=enqueue)


async def queue_run(db: Database, chat: ChatSession, content: str = "hello") -> Run:
    """Submit a message to the session; returns its queued run."""
    item = submission(chat, content)
    [refusal] = await db.write_in_thread(lambda connection: ledger.insert_submissions(connection, [item]))
    assert refusal is None, refusal
    return item.run


async def next_queued(db: Database, chat: ChatSession) -> ledger.QueuedRun | None:
    """The session's oldest queued run, read as an engine reads it before claiming it."""
    return await db.read_in_thread(lambda connection: ledger.next_queued(connection, chat.id, history_limit=100))


async def take(db: Database, run: Run, owner: str) -> ledger.Take:
    """Claim the run as read for `owner`, as an engine does (`run` becomes the claimed attempt when `taken`)."""
    return await db.write_in_thread(lambda connection: ledger.take(connection, run, owner))


async def claim_next(db: Database, chat: ChatSession, owner: str) -> Run:
    """Read and claim the session's oldest queued run for `owner`, asserting there is one and the claim held."""
    claim = await next_queued(db, chat)
    assert claim is not None
    assert await take(db, claim.run, owner) == "taken"
    return claim.run


async def apply(db: Database, *writes: ledger.RunWrites) -> set[tuple[str, int]]:
    """Commit one journal group of writes; returns the stale (run, attempt)s, whose writes were refused."""
    return await db.write_in_thread(lambda connection: ledger.apply_run_writes(connection, list(writes)))


async def read_run(db: Database, run_id: str) -> Run:
    run = await db.read_in_thread(lambda connection: fetch_one(connection, Run, Run.id == run_id))
    assert run is not None
    return run


async def read_events(db: Database, run_id: str) -> list[RunEvent]:
    """The run's committed events, in order."""

    def read(connection: Connection) -> list[RunEvent]:
        with Session(bind=connection) as session:
            return list(session.exec(select(RunEvent).where(RunEvent.run_id == run_id)
                                     .order_by(RunEvent.seq)).all())  # type: ignore[arg-type]

    return await db.read_in_thread(read)


async def read_messages(db: Database, session_id: str) -> list[Message]:
    """The session's committed messages, oldest first."""

    def read(connection: Connection) -> list[Message]:
        with Session(bind=connection) as session:
            return list(session.exec(select(Message).where(Message.session_id == session_id)
                                     .order_by(Message.pk)).all())  # type: ignore[arg-type]

    return await db.read_in_thread(read)


def dead_owner() -> str:
    """An executor identity naming a process of this host that has exited: what a crashed server or worker
    leaves in the `owner` of the runs it held."""
    exited = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                            text=True, check=True)
    return f"{socket.gethostname()}:{exited.stdout.strip()}:crashed"
