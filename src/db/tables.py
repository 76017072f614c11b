"""SQLModel tables. Every public row has an integer `pk` (ordering, cursors) and a prefixed string `id`."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import JSON, Column, Index, MetaData, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

SQLModel.metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_id(prefix: str) -> str:
    """An opaque prefixed id, e.g. `run_3fZk...` (24 random base62 characters, ~143 bits).

    One read of the OS's randomness per id: a byte maps to a character only below 248 (four times 62), so every
    character is equally likely; the rare short draw takes more bytes.
    """
    chars: list[str] = []
    while len(chars) < 24:
        chars.extend(_ID_ALPHABET[byte % 62] for byte in secrets.token_bytes(32) if byte < 248)
    return prefix + "_" + "".join(chars[:24])


def now() -> int:
    return int(time.time())


def _json_column() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class User(SQLModel, table=True):
    __tablename__ = "user"

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    name: str = Field(unique=True, max_length=200)
    created_at: int = Field(default_factory=now)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    key_hash: str = Field(unique=True, max_length=64)
    prefix: str = Field(max_length=16)
    created_at: int = Field(default_factory=now)
    revoked_at: int | None = None


class Workflow(SQLModel, table=True):
    __tablename__ = "workflow"

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    name: str = Field(max_length=200)
    type: str = Field(max_length=40)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: int = Field(default_factory=now)
    updated_at: int = Field(default_factory=now)
    deleted_at: int | None = None


class PromptModule(SQLModel, table=True):
    """A user's prompt module (`/api/v1/modules`): a named system prompt that pipeline steps may name."""

    __tablename__ = "module"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_module_user_id_name"),)

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    user_id: str = Field(foreign_key="user.id", max_length=40)
    name: str = Field(max_length=100)
    system_message: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    model: str | None = Field(default=None, max_length=100)
    created_at: int = Field(default_factory=now)
    updated_at: int = Field(default_factory=now)


class RouterStat(SQLModel, table=True):
    """What the router learned for a user's workflow: one row per (statistics key, model), where the key is a
    sub-task kind (`code`) or a kind and input size (`code/long`; `autobots.router` "contexts")."""

    __tablename__ = "router_stat"
    __table_args__ = (UniqueConstraint("user_id", "workflow_id", "kind", "model",
                                       name="uq_router_stat_user_id_workflow_id_kind_model"),)

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=40)
    workflow_id: str = Field(max_length=40)
    kind: str = Field(max_length=100)
    model: str = Field(max_length=100)
    stats: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_at: int = Field(default_factory=now)


class RouterOutcome(SQLModel, table=True):
    """One routed sub-task's outcome: what the verifier (or the user's feedback) scored, what it cost. `kind`
    holds the sub-task's context, its kind and input size (`code/long`), which its statistics were kept under."""

    __tablename__ = "router_outcome"
    __table_args__ = (UniqueConstraint("run_id", "subtask_id", name="uq_router_outcome_run_id_subtask_id"),)

    pk: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=40, index=True)
    user_id: str = Field(max_length=40)
    workflow_id: str = Field(max_length=40)
    subtask_id: str = Field(max_length=100)
    kind: str = Field(max_length=100)
    model: str = Field(max_length=100)
    success: float
    cost_cents: float
    latency_s: float
    reward: float
    feedback: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: int = Field(default_factory=now)


class ChatSession(SQLModel, table=True):
    __tablename__ = "session"
    __table_args__ = (UniqueConstraint("user_id", "external_id", name="uq_session_user_id_external_id"),)

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    user_id: str = Field(foreign_key="user.id", index=True, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    workflow_id: str | None = Field(default=None, max_length=40)
    external_id: str | None = Field(default=None, max_length=200, description="A seed-era client's session id")
    created_at: int = Field(default_factory=now)
    updated_at: int = Field(default_factory=now)


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (Index("ix_message_session_pk", "session_id", "pk"),)

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    session_id: str = Field(foreign_key="session.id", max_length=40)
    user_id: str = Field(max_length=40)
    run_id: str | None = Field(default=None, max_length=40)
    role: str = Field(max_length=20)
    content: str = Field(sa_column=Column(Text, nullable=False))
    meta: dict[str, Any] | None = _json_column()
    created_at: int = Field(default_factory=now)


class Run(SQLModel, table=True):
    __tablename__ = "run"
    __table_args__ = (Index("ix_run_session_pk", "session_id", "pk"), Index("ix_run_status", "status"),
                      Index("ix_run_user_status", "user_id", "status"))

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    session_id: str = Field(foreign_key="session.id", max_length=40)
    user_id: str = Field(max_length=40)
    workflow_id: str | None = Field(default=None, max_length=40)
    user_message_id: str | None = Field(default=None, max_length=40)
    reply_message_id: str | None = Field(default=None, max_length=40)
    status: str = Field(default="queued", max_length=20)
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    usage: dict[str, Any] | None = _json_column()
    cost: float = 0.0
    error: dict[str, Any] | None = _json_column()
    stop_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Set when a limit stopped the run first (status `incomplete`): max_messages, max_tokens or timeout.
    incomplete_reason: str | None = Field(default=None, max_length=20)
    # A pipeline's steps as they stand: [{id, status, model}], updated as each starts and ends.
    steps: list[dict[str, Any]] | None = _json_column()
    sandbox: str | None = Field(default=None, max_length=20)
    owner: str | None = Field(default=None, max_length=100)
    attempt: int = 0
    heartbeat_at: float | None = None
    checkpoint: dict[str, Any] | None = _json_column()
    last_event_seq: int = 0
    created_at: int = Field(default_factory=now)
    started_at: int | None = None
    finished_at: int | None = None


class RunEvent(SQLModel, table=True):
    __tablename__ = "run_event"
    __table_args__ = (UniqueConstraint("run_id", "seq", name="uq_run_event_run_id_seq"),)

    pk: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", max_length=40)
    seq: int
    type: str = Field(max_length=40)
    data: dict[str, Any] | None = _json_column()
    created_at: int = Field(default_factory=now)


class GalleryItem(SQLModel, table=True):
    __tablename__ = "gallery_item"

    pk: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, index=True, max_length=40)
    published_by: str = Field(foreign_key="user.id", index=True, max_length=40)
    session: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    messages: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: int = Field(default_factory=now)


class GalleryTag(SQLModel, table=True):
    __tablename__ = "gallery_tag"

    pk: int | None = Field(default=None, primary_key=True)
    gallery_id: str = Field(foreign_key="gallery_item.id", index=True, max_length=40)
    tag: str = Field(index=True, max_length=100)


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_record_user_id_key"),)

    pk: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(max_length=40)
    key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: int = Field(default_factory=now)
    expires_at: int
