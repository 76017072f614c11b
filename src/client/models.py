"""The API's objects as the client returns them: plain pydantic models mirroring ../shared/API.md.

Unknown fields are kept (`extra="allow"`), so a newer server's additions are not lost.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

RunStatus = Literal["queued", "running", "cancelling", "completed", "incomplete", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "incomplete", "failed", "cancelled"})


class APIObject(BaseModel):
    model_config = ConfigDict(extra="allow")


class Usage(APIObject):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class Workflow(APIObject):
    id: str
    object: Literal["workflow"] = "workflow"
    user_id: str
    name: str
    type: str
    spec: dict[str, Any]
    created_at: int
    updated_at: int


class Session(APIObject):
    id: str
    object: Literal["session"] = "session"
    user_id: str
    name: str | None = None
    workflow_id: str | None = None
    created_at: int
    updated_at: int


class Message(APIObject):
    id: str
    object: Literal["message"] = "message"
    session_id: str
    run_id: str | None = None
    role: Literal["user", "assistant"]
    content: str
    metadata: dict[str, Any] = {}
    created_at: int


class RunError(APIObject):
    type: str
    message: str


class IncompleteDetails(APIObject):
    reason: str


class Run(APIObject):
    id: str
    object: Literal["run"] = "run"
    session_id: str
    workflow_id: str | None = None
    status: RunStatus
    usage: Usage = Usage()
    cost: float = 0.0
    error: RunError | None = None
    incomplete_details: IncompleteDetails | None = None
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class RunEvent(APIObject):
    """One event of a run: `seq` counts from 1 without gaps; `done` is the last."""

    object: Literal["run.event"] = "run.event"
    seq: int
    type: str
    data: dict[str, Any] = {}
    created_at: int


class PostedMessage(APIObject):
    """The answer to sending a message: the user's message, its run, and the reply when waited for."""

    message: Message
    run: Run
    reply: Message | None = None


class GalleryItem(APIObject):
    id: str
    object: Literal["gallery_item"] = "gallery_item"
    session: dict[str, Any]
    messages: list[dict[str, Any]]
    tags: list[str]
    published_by: str
    created_at: int


class Page(BaseModel, Generic[T]):
    """One page of a list: `data`, and `has_more` with `last_id` to ask for the next (`after=last_id`)."""

    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False
