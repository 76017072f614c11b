"""Seed-era request and response bodies, and the functions that render our rows in them. A seed message is our
message (`sessions.schemas.MessageOut`) plus the seed backend's names for some of its fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from autobots.compat.flow_config import AgentWorkFlowConfig, SeedModel
from autobots.db.tables import ChatSession, Message, Run, Workflow
from autobots.sessions.schemas import MessageOut, message_out
from autobots.web.schemas import GalleryItemOut, PostedMessage, run_out
from pydantic import BaseModel, Field

UserId = Annotated[str | None, Field(None, max_length=200, description="The acting user (see `compat.routes`)")]


# -- requests -----------------------------------------------------------------------------------------------------

class SeedMessageIn(SeedModel):
    user_id: UserId = None
    role: str = "user"
    content: str = Field(min_length=1, max_length=1_000_000)
    session_id: str | None = Field(None, max_length=200, description="Our ses_ id, or the client's own id")
    msg_id: str | None = Field(None, max_length=200)


class SeedMessageRequest(SeedModel):
    message: SeedMessageIn
    flow_config: AgentWorkFlowConfig | None = None


class SeedSessionIn(SeedModel):
    user_id: UserId = None
    session_id: str | None = Field(None, max_length=200)
    id: str | None = Field(None, max_length=200)
    name: str | None = Field(None, max_length=200)
    flow_config: AgentWorkFlowConfig | None = None

    @property
    def reference(self) -> str | None:
        """The session the client names: our id or its own, under either of the seed backend's names."""
        return self.session_id or self.id


class SeedSessionRequest(SeedModel):
    user_id: UserId = None
    session: SeedSessionIn = Field(default_factory=SeedSessionIn)


class SeedPublishRequest(SeedSessionRequest):
    tags: list[str] = Field(default_factory=list, max_length=20)


class SeedDeleteMessageRequest(SeedModel):
    user_id: UserId = None
    msg_id: str = Field(max_length=200)
    session_id: str | None = Field(None, max_length=200)


class SeedClearRequest(SeedModel):
    user_id: UserId = None
    session_id: str = Field(max_length=200)


# -- responses ----------------------------------------------------------------------------------------------------

class SeedMessageOut(MessageOut):
    msg_id: str
    user_id: str
    timestamp: str


class SeedSessionOut(BaseModel):
    session_id: str
    id: str
    user_id: str
    name: str | None
    flow_config: dict[str, Any] | None
    timestamp: str
    external_id: str | None


class SeedOk(BaseModel):
    status: bool = True
    message: str


class SeedMessages(SeedOk):
    data: list[SeedMessageOut]


class SeedSessions(SeedOk):
    data: list[SeedSessionOut]


class SeedGalleryItem(SeedOk):
    data: GalleryItemOut


class SeedGallery(SeedOk):
    data: list[GalleryItemOut]


class SeedReply(BaseModel):
    status: bool = Field(description="false when the run failed or was cancelled")
    message: str = Field(description="The reply text, or '<error.type>: <error.message>'")
    metadata: dict[str, Any] = Field(description="The reply message, plus usage, cost, start_time, end_time, "
                                                 "run_id, session_id")
    data: PostedMessage


def iso(seconds: int | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z") if seconds is not None else None


def seed_message(row: Message) -> dict[str, Any]:
    return {**message_out(row), "msg_id": row.id, "user_id": row.user_id, "timestamp": iso(row.created_at)}


def seed_session(row: ChatSession, workflow: Workflow | None) -> dict[str, Any]:
    return {"session_id": row.id, "id": row.id, "user_id": row.user_id, "name": row.name,
            "flow_config": workflow.spec if workflow else None, "timestamp": iso(row.created_at),
            "external_id": row.external_id}


def seed_reply(message: Message, run: Run, reply: Message | None) -> dict[str, Any]:
    """The seed reply: text, reply message with run totals as metadata, the v1 objects as data."""
    posted = {"message": message_out(message), "run": run_out(run), "reply": message_out(reply) if reply else None}
    totals = {"usage": posted["run"]["usage"], "cost": run.cost, "start_time": iso(run.started_at),
              "end_time": iso(run.finished_at), "run_id": run.id, "session_id": run.session_id}
    if run.status in ("completed", "incomplete") and reply is not None:  # incomplete: the partial reply
        return {"status": True, "message": reply.content, "metadata": {**posted["reply"], **totals}, "data": posted}
    error = run.error or {"type": run.status, "message": run.stop_reason or f"the run ended {run.status}"}
    return {"status": False, "message": f"{error['type']}: {error['message']}",
            "metadata": {**totals, "run": posted["run"]}, "data": posted}
