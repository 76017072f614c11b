"""The run ledger's hot writes, as plain functions of a `Connection` for `Database.write_in_thread` /
`read_in_thread`: each runs whole on the writer thread, so no transaction spans an event-loop turn."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from autobots.db.repositories.runs import ACTIVE_STATUSES
from autobots.db.tables import Message, Run, RunEvent, Workflow, now
from sqlalchemy import Connection, insert, select, update


@dataclass(frozen=True)
class HistoryRow:
    id: str
    role: str
    content: str


@dataclass(frozen=True)
class QueuedRun:
    """A queued run with what executing it needs: its user message, its events so far, the session's history
    (oldest first, the run's own user message included)."""

    run: Run
    content: str
    events: list[dict[str, Any]]
    history: list[HistoryRow]


@dataclass
class RunWrites:
    """What one run attempt writes in a journal group: its run fields, its events, its messages."""

    run_id: str
    attempt: int
    values: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class Refusal:
    """Why a submission wrote nothing: the session's active run, or its workflow is gone."""

    busy_with: str | None = None
    workflow_deleted: bool = False


def insert_submission(connection: Connection, message: Message, run: Run, queued: RunEvent, *,
                      enqueue: bool) -> Refusal | None:
    """The user message, its queued run (with a copy of its workflow's spec) and the run's first event; nothing
    when the workflow was deleted, or when the session has an active run and `enqueue` is false."""
    spec = connection.execute(select(Workflow.spec).where(Workflow.id == run.workflow_id,  # type: ignore[arg-type]
                                                          Workflow.deleted_at.is_(None))).scalar()  # type: ignore[union-attr]
    if spec is None:
        return Refusal(workflow_deleted=True)
    active = connection.execute(
        select(Run.id).where(Run.session_id == run.session_id, Run.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined,arg-type]
        .order_by(Run.pk).limit(1)).scalar()  # type: ignore[arg-type]
    if active is not None and not enqueue:
        return Refusal(busy_with=str(active))
    run.spec = spec
    connection.execute(insert(Message).values(**message.model_dump(exclude={"pk"})))
    connection.execute(insert(Run).values(**run.model_dump(exclude={"pk"})))
    connection.execute(insert(RunEvent).values(**queued.model_dump(exclude={"pk"})))
    return None


def next_queued(connection: Connection, session_id: str, *, history_limit: int) -> QueuedRun | None:
    """The session's oldest queued run and what executing it needs (a read: `take` then claims the run only
    if it is unchanged, so what was read here still holds)."""
    row = connection.execute(select(Run).where(Run.session_id == session_id, Run.status == "queued")  # type: ignore[arg-type]
                             .order_by(Run.pk).limit(1)).mappings().first()  # type: ignore[arg-type]
    if row is None:
        return None
    run = Run(**row)
    content = connection.execute(select(Message.content).where(Message.id == run.user_message_id)).scalar()
    events = [dict(e) for e in connection.execute(
        select(RunEvent.seq, RunEvent.type, RunEvent.data, RunEvent.created_at)  # type: ignore[call-overload]
        .where(RunEvent.run_id == run.id).order_by(RunEvent.seq)).mappings()]
    for event in events:
        event["data"] = event["data"] or {}
    recent = connection.execute(
        select(Message.id, Message.role, Message.content).where(Message.session_id == session_id)  # type: ignore[call-overload]
        .order_by(Message.pk.desc()).limit(history_limit + 1)).all()  # type: ignore[union-attr]
    history = [HistoryRow(id=r.id, role=r.role, content=r.content) for r in reversed(recent)]
    return QueuedRun(run=run, content=content or "", events=events, history=history)


def take(connection: Connection, run: Run, owner: str) -> bool:
    """Claim a queued run for `owner` with one UPDATE fenced by the attempt and status read; on success `run`
    becomes the claimed attempt."""
    values = {"status": "running", "attempt": run.attempt + 1, "owner": owner,
              "started_at": run.started_at or now(), "heartbeat_at": time.time()}
    claimed = connection.execute(update(Run).where(Run.id == run.id, Run.attempt == run.attempt,  # type: ignore[arg-type]
                                                   Run.status == "queued").values(**values))
    if not claimed.rowcount:
        return False
    for name, value in values.items():
        setattr(run, name, value)
    return True


def beat(connection: Connection, run_ids: list[str], owner: str) -> None:
    """The heartbeat of `owner`'s live runs."""
    connection.execute(update(Run).where(Run.id.in_(run_ids), Run.owner == owner)  # type: ignore[attr-defined]
                       .values(heartbeat_at=time.time()))


def apply_run_writes(connection: Connection, group: list[RunWrites]) -> set[tuple[str, int]]:
    """Per run attempt, in order: its fields (fenced by attempt), then its events and messages. Returns the
    (run, attempt)s found stale, whose writes were skipped."""
    stale: set[tuple[str, int]] = set()
    events: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for writes in group:
        fenced = update(Run).where(Run.id == writes.run_id, Run.attempt == writes.attempt)  # type: ignore[arg-type]
        if not connection.execute(fenced.values(**writes.values)).rowcount:
            stale.add((writes.run_id, writes.attempt))
            continue
        events.extend(writes.events)
        messages.extend(message.model_dump(exclude={"pk"}) for message in writes.messages)
    if events:
        connection.execute(insert(RunEvent), events)
    if messages:
        connection.execute(insert(Message), messages)
    return stale
