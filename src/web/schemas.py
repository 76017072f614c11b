"""Public shapes of the API (response models) and request bodies. Rows never leave without these; a room with a
home of its own defines its shapes there (`sessions/schemas.py`: sessions and messages)."""

from __future__ import annotations

import json
from typing import Any, Generic, Literal, TypeVar

from autobots.db.repositories import Page
from autobots.db.tables import GalleryItem, Run, RunEvent, Workflow
from autobots.sessions.message_cache import CachedMessage
from autobots.sessions.schemas import MessageOut
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class ErrorDetail(BaseModel):
    type: str
    message: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ListOf(BaseModel, Generic[T]):
    object: Literal["list"] = "list"
    data: list[T]
    first_id: str | None
    last_id: str | None
    has_more: bool


def list_of(page: Page[Any], shape: Any) -> dict[str, Any]:
    data = [shape(row) for row in page.rows]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None, "has_more": page.has_more}


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class WorkflowOut(BaseModel):
    id: str
    object: Literal["workflow"] = "workflow"
    user_id: str
    name: str
    type: str
    spec: dict[str, Any]
    created_at: int
    updated_at: int


class RunError(BaseModel):
    type: str
    message: str
    step: str | None = Field(None, description="The pipeline step that failed, for a pipeline run")


class IncompleteDetails(BaseModel):
    reason: Literal["max_messages", "max_tokens", "timeout", "max_steps"]


class StepState(BaseModel):
    id: str
    status: Literal["running", "completed", "failed"]
    model: str | None = None


class RunOut(BaseModel):
    id: str
    object: Literal["run"] = "run"
    session_id: str
    workflow_id: str | None
    status: Literal["queued", "running", "cancelling", "completed", "incomplete", "failed", "cancelled"]
    usage: Usage
    cost: float
    error: RunError | None
    incomplete_details: IncompleteDetails | None = Field(
        None, description="Why a limit stopped the run before the workflow's own end (status `incomplete`)")
    steps: list[StepState] | None = Field(None, description="A pipeline's steps as they stand, while it runs too")
    stop_reason: str | None
    attempt: int
    user_message_id: str | None
    reply_message_id: str | None
    created_at: int
    started_at: int | None
    finished_at: int | None


class RunEventOut(BaseModel):
    object: Literal["run.event"] = "run.event"
    seq: int
    type: str
    data: dict[str, Any]
    created_at: int


class GalleryItemOut(BaseModel):
    id: str
    object: Literal["gallery_item"] = "gallery_item"
    session: dict[str, Any]
    messages: list[dict[str, Any]]
    tags: list[str]
    published_by: str
    created_at: int


class PostedMessage(BaseModel):
    message: MessageOut
    run: RunOut
    reply: MessageOut | None = None


def workflow_out(row: Workflow) -> dict[str, Any]:
    return {"id": row.id, "object": "workflow", "user_id": row.user_id, "name": row.name, "type": row.type,
            "spec": row.spec, "created_at": row.created_at, "updated_at": row.updated_at}


def json_response(body: dict[str, Any], *, status: int) -> Response:
    """JSON-ready data sent as it is: hot routes skip FastAPI's re-validation against their response model
    (which stays their documented shape)."""
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), status_code=status,
                    media_type="application/json")


def message_list_json(page: Page[CachedMessage]) -> bytes:
    """The list envelope around messages already rendered as JSON."""
    first = json.dumps(page.rows[0].id) if page.rows else "null"
    last = json.dumps(page.rows[-1].id) if page.rows else "null"
    items = ",".join(message.json for message in page.rows)
    body = (f'{{"object":"list","data":[{items}],"first_id":{first},"last_id":{last},'
            f'"has_more":{"true" if page.has_more else "false"}}}')
    return body.encode()


def run_out(row: Run) -> dict[str, Any]:
    usage = row.usage or {}
    return {"id": row.id, "object": "run", "session_id": row.session_id, "workflow_id": row.workflow_id,
            "status": row.status,
            "usage": {"prompt_tokens": usage.get("prompt_tokens", 0),
                      "completion_tokens": usage.get("completion_tokens", 0),
                      "total_tokens": usage.get("total_tokens", 0)},
            "cost": row.cost, "error": row.error,
            "incomplete_details": {"reason": row.incomplete_reason} if row.incomplete_reason else None,
            "steps": row.steps,
            "stop_reason": row.stop_reason, "attempt": row.attempt,
            "user_message_id": row.user_message_id, "reply_message_id": row.reply_message_id,
            "created_at": row.created_at, "started_at": row.started_at, "finished_at": row.finished_at}


def event_out(row: RunEvent) -> dict[str, Any]:
    return {"object": "run.event", "seq": row.seq, "type": row.type, "data": row.data or {},
            "created_at": row.created_at}


def gallery_out(row: GalleryItem) -> dict[str, Any]:
    return {"id": row.id, "object": "gallery_item", "session": row.session, "messages": row.messages,
            "tags": row.tags, "published_by": row.published_by, "created_at": row.created_at}


# -- request bodies ----------------------------------------------------------------------------------------------

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Body):
    name: str | None = Field(None, max_length=200)
    workflow_id: str | None = Field(None, max_length=64)
    workflow: dict[str, Any] | None = Field(None, description="An inline workflow spec, stored as a new workflow")


class SessionUpdate(_Body):
    name: str | None = Field(None, max_length=200)
    workflow_id: str | None = Field(None, max_length=64)


class MessageCreate(_Body):
    content: str = Field(min_length=1, max_length=1_000_000)
    workflow_id: str | None = Field(None, max_length=64)
    workflow: dict[str, Any] | None = None
    if_busy: Literal["reject", "enqueue"] = "reject"


class PublishRequest(_Body):
    tags: list[str] = Field(default_factory=list, max_length=20)


class ValidationResult(BaseModel):
    valid: bool
    errors: list[dict[str, str]]
