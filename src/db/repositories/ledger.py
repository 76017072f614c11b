"""The run ledger's hot writes, as plain functions of a `Connection` for `Database.write_in_thread` /
`read_in_thread`: each runs whole on the writer thread, so no transaction spans an event-loop turn."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from autobots.db.repositories.runs import ACTIVE_STATUSES
from autobots.db.tables import ChatSession, Message, Run, RunEvent, User, Workflow, now
from sqlalchemy import Connection, Integer, bindparam, func, insert, select, text, update


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
    """Why a submission wrote nothing: the session's active run, its workflow is gone, or its user has
    `active_runs` active runs already, the most allowed."""

    busy_with: str | None = None
    workflow_deleted: bool = False
    active_runs: int | None = None


@dataclass
class Submission:
    """A user message with its queued run and the run's first event; `enqueue`: even if the session is busy."""

    message: Message
    run: Run
    queued: RunEvent
    enqueue: bool


def insert_submissions(connection: Connection, batch: list[Submission], *,
                       max_active_per_user: int = 0) -> list[Refusal | None]:
    """Write each submission, in order, with a copy of its workflow's spec in its run, unless its workflow was
    deleted, or its session has an active run (one written earlier in the batch included) and it does not
    enqueue, or its user has `max_active_per_user` active runs (0: no limit; those written earlier in the
    batch included); returns, per submission, why it was refused or None. A few statements for the whole batch."""
    workflow_ids = {item.run.workflow_id for item in batch}
    specs = dict(connection.execute(select(Workflow.id, Workflow.spec).where(  # type: ignore[call-overload]
        Workflow.id.in_(workflow_ids), Workflow.deleted_at.is_(None))).all())  # type: ignore[attr-defined,union-attr]
    active: dict[str, str] = {}
    for session_id, run_id in connection.execute(select(Run.session_id, Run.id).where(  # type: ignore[call-overload]
            Run.session_id.in_({item.run.session_id for item in batch}),  # type: ignore[attr-defined]
            Run.status.in_(ACTIVE_STATUSES)).order_by(Run.pk.desc())):  # type: ignore[attr-defined,union-attr]
        active[session_id] = run_id  # descending: the oldest active run wins
    held = active_runs_by_user(connection, {item.run.user_id for item in batch}) if max_active_per_user else {}
    refusals: list[Refusal | None] = []
    accepted: list[Submission] = []
    for item in batch:
        spec = specs.get(item.run.workflow_id)
        busy_with = active.get(item.run.session_id)
        if spec is None:
            refusals.append(Refusal(workflow_deleted=True))
        elif busy_with is not None and not item.enqueue:
            refusals.append(Refusal(busy_with=busy_with))
        elif max_active_per_user and held.get(item.run.user_id, 0) >= max_active_per_user:
            refusals.append(Refusal(active_runs=held[item.run.user_id]))
        else:
            item.run.spec = spec
            active.setdefault(item.run.session_id, item.run.id)
            held[item.run.user_id] = held.get(item.run.user_id, 0) + 1
            accepted.append(item)
            refusals.append(None)
    if accepted:
        connection.execute(insert(Message), [item.message.model_dump(exclude={"pk"}) for item in accepted])
        connection.execute(insert(Run), [item.run.model_dump(exclude={"pk"}) for item in accepted])
        connection.execute(insert(RunEvent), [item.queued.model_dump(exclude={"pk"}) for item in accepted])
    return refusals


EXECUTING = ("running", "cancelling")


@dataclass(frozen=True)
class RunHead:
    """What recovery and dispatch need of a run: no transcript, checkpoint or usage (a running team's checkpoint
    can be large, and they look at every active run every few seconds)."""

    id: str
    session_id: str
    user_id: str
    status: str
    owner: str | None
    heartbeat_at: float | None


def run_heads(connection: Connection, statuses: tuple[str, ...]) -> list[RunHead]:
    """The runs in `statuses`, oldest first."""
    rows = connection.execute(select(Run.id, Run.session_id, Run.user_id, Run.status, Run.owner,  # type: ignore[call-overload]
                                     Run.heartbeat_at).where(Run.status.in_(statuses))  # type: ignore[attr-defined]
                              .order_by(Run.pk))
    return [RunHead(*row) for row in rows]


def active_runs_by_user(connection: Connection, user_ids: set[str]) -> dict[str, int]:
    """How many active (queued, running, cancelling) runs each of the users has, for a quota check followed by
    inserts in the same transaction. The users' rows are locked first: on PostgreSQL a concurrent submitter of
    another API process for the same users waits for this transaction, and then counts what it wrote (SQLite
    has a single writer at a time and ignores the lock)."""
    connection.execute(select(User.id).where(User.id.in_(user_ids))  # type: ignore[attr-defined]
                       .order_by(User.id).with_for_update())
    counted = connection.execute(select(Run.user_id, func.count()).where(  # type: ignore[call-overload]
        Run.user_id.in_(user_ids), Run.status.in_(ACTIVE_STATUSES))  # type: ignore[attr-defined]
        .group_by(Run.user_id))
    return {user_id: int(count) for user_id, count in counted}


# The claim's statements are built once, with their values bound at execution: building a statement costs
# several times what executing it costs, and every run is claimed this way (next_queued: 0.4 ms this way against
# 1.0 ms with statements built per call).
_QUEUED = (select(Run).where(Run.session_id == bindparam("session_id"), Run.status == "queued")  # type: ignore[arg-type]
           .order_by(Run.pk).limit(1))  # type: ignore[arg-type]
_MESSAGE_CONTENT = select(Message.content).where(Message.id == bindparam("message_id"))  # type: ignore[arg-type]
_RUN_EVENTS = (select(RunEvent.seq, RunEvent.type, RunEvent.data, RunEvent.created_at)  # type: ignore[call-overload]
               .where(RunEvent.run_id == bindparam("run_id")).order_by(RunEvent.seq))
_RECENT_MESSAGES = (select(Message.id, Message.role, Message.content)  # type: ignore[call-overload]
                    .where(Message.session_id == bindparam("session_id"))
                    .order_by(Message.pk.desc()).limit(bindparam("limit", type_=Integer)))  # type: ignore[union-attr]


def next_queued(connection: Connection, session_id: str, *, history_limit: int) -> QueuedRun | None:
    """The session's oldest queued run and what executing it needs (a read: `take` then claims the run only
    if it is unchanged, so what was read here still holds)."""
    row = connection.execute(_QUEUED, {"session_id": session_id}).mappings().first()
    if row is None:
        return None
    run = Run(**row)
    content = connection.execute(_MESSAGE_CONTENT, {"message_id": run.user_message_id}).scalar()
    events = [dict(e) for e in connection.execute(_RUN_EVENTS, {"run_id": run.id}).mappings()]
    for event in events:
        event["data"] = event["data"] or {}
    recent = connection.execute(_RECENT_MESSAGES, {"session_id": session_id, "limit": history_limit + 1}).all()
    history = [HistoryRow(id=r.id, role=r.role, content=r.content) for r in reversed(recent)]
    return QueuedRun(run=run, content=content or "", events=events, history=history)


Take = Literal["taken", "session_busy", "moved_on"]


_SESSION_ROW_LOCK = (select(ChatSession.pk).where(ChatSession.id == bindparam("session_id"))  # type: ignore[arg-type]
                     .with_for_update())
_SESSION_EXECUTING = (select(Run.pk).where(Run.session_id == bindparam("session_id"),  # type: ignore[arg-type]
                                           Run.id != bindparam("run_id"), Run.status.in_(EXECUTING))  # type: ignore[attr-defined]
                      .limit(1))
# Bound names differ from the columns': those of a SET clause are reserved for it.
_CLAIM = (update(Run).where(Run.id == bindparam("run_id"), Run.attempt == bindparam("read_attempt"),  # type: ignore[arg-type]
                            Run.status == "queued")
          .values(status="running", attempt=bindparam("new_attempt"), owner=bindparam("new_owner"),
                  started_at=bindparam("new_started_at"), heartbeat_at=bindparam("new_heartbeat_at")))


def take(connection: Connection, run: Run, owner: str) -> Take:
    """Claim a queued run for `owner` with one UPDATE fenced by the attempt and status read; on success (`taken`)
    `run` becomes the claimed attempt.

    A session executes one run at a time wherever its runs are dispatched: the claim is refused
    (`session_busy`) while another run of the session is running, which on PostgreSQL is read under a lock
    on the session's row, so two executors on two hosts cannot both claim. `moved_on`: the run is no longer
    the queued attempt that was read (cancelled, or claimed by another executor)."""
    if connection.dialect.name == "postgresql":
        connection.execute(_SESSION_ROW_LOCK, {"session_id": run.session_id})
    busy = connection.execute(_SESSION_EXECUTING, {"session_id": run.session_id, "run_id": run.id}).first()
    if busy is not None:
        return "session_busy"
    values = {"status": "running", "attempt": run.attempt + 1, "owner": owner,
              "started_at": run.started_at or now(), "heartbeat_at": time.time()}
    claimed = connection.execute(_CLAIM, {
        "run_id": run.id, "read_attempt": run.attempt, "new_attempt": values["attempt"], "new_owner": owner,
        "new_started_at": values["started_at"], "new_heartbeat_at": values["heartbeat_at"]})
    if not claimed.rowcount:
        return "moved_on"
    for name, value in values.items():
        setattr(run, name, value)
    return "taken"


def notify(connection: Connection, channel: str, payloads: list[str]) -> None:
    """PostgreSQL NOTIFY of each payload on `channel`, delivered when the transaction commits (nothing on
    SQLite, where one server holds every run)."""
    if payloads and connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) "
                                "AS payload"), {"channel": channel, "payloads": payloads})


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
