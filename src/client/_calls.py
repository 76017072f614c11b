"""Every API call the client makes, as a `Call`: the one place that knows paths, bodies and result types."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from autobots.client._base import WAIT_TIMEOUT_S, Call
from autobots.client.models import GalleryItem, Message, Page, PostedMessage, Run, RunEvent, Session, Workflow
from pydantic import TypeAdapter

API = "/api/v1"
YAML = "application/yaml"
Order = Literal["asc", "desc"]
_EVENTS = TypeAdapter(list[RunEvent])


def _id(value: str) -> str:
    """An id as one path segment: quoted, so no id can reach another route."""
    return quote(value, safe="")


def _page(limit: int | None, order: Order | None, after: str | None, before: str | None) -> dict[str, Any]:
    return {"limit": limit, "order": order, "after": after, "before": before}


def create_workflow(spec: dict[str, Any] | str, idempotency_key: str | None) -> Call[Workflow]:
    """A mapping goes as JSON, a string as YAML."""
    if isinstance(spec, str):
        return Call("POST", f"{API}/workflows", Workflow.model_validate, content=spec.encode(), content_type=YAML,
                    creates=True, idempotency_key=idempotency_key)
    return Call("POST", f"{API}/workflows", Workflow.model_validate, json=spec, creates=True,
                idempotency_key=idempotency_key)


def get_workflow(workflow_id: str) -> Call[Workflow]:
    return Call("GET", f"{API}/workflows/{_id(workflow_id)}", Workflow.model_validate)


def list_workflows(limit: int | None, order: Order | None, after: str | None,
                   before: str | None) -> Call[Page[Workflow]]:
    return Call("GET", f"{API}/workflows", Page[Workflow].model_validate, params=_page(limit, order, after, before))


def create_session(workflow: dict[str, Any] | None, workflow_id: str | None, name: str | None,
                   idempotency_key: str | None) -> Call[Session]:
    body = {k: v for k, v in (("workflow", workflow), ("workflow_id", workflow_id), ("name", name)) if v is not None}
    return Call("POST", f"{API}/sessions", Session.model_validate, json=body, creates=True,
                idempotency_key=idempotency_key)


def get_session(session_id: str) -> Call[Session]:
    return Call("GET", f"{API}/sessions/{_id(session_id)}", Session.model_validate)


def list_sessions(limit: int | None, order: Order | None, after: str | None,
                  before: str | None) -> Call[Page[Session]]:
    return Call("GET", f"{API}/sessions", Page[Session].model_validate, params=_page(limit, order, after, before))


def list_messages(session_id: str, limit: int | None, order: Order | None, after: str | None,
                  before: str | None) -> Call[Page[Message]]:
    return Call("GET", f"{API}/sessions/{_id(session_id)}/messages", Page[Message].model_validate,
                params=_page(limit, order, after, before))


def send_message(session_id: str, content: str, *, wait: bool, workflow_id: str | None,
                 if_busy: Literal["reject", "enqueue"] | None, idempotency_key: str | None) -> Call[PostedMessage]:
    body: dict[str, Any] = {"content": content}
    if workflow_id is not None:
        body["workflow_id"] = workflow_id
    if if_busy is not None:
        body["if_busy"] = if_busy
    return Call("POST", f"{API}/sessions/{_id(session_id)}/messages", PostedMessage.model_validate, json=body,
                params={"wait": "true" if wait else None}, creates=True, idempotency_key=idempotency_key,
                timeout_s=WAIT_TIMEOUT_S if wait else None)


def get_run(run_id: str) -> Call[Run]:
    return Call("GET", f"{API}/runs/{_id(run_id)}", Run.model_validate)


def list_runs(session_id: str, limit: int | None, order: Order | None, after: str | None,
              before: str | None) -> Call[Page[Run]]:
    return Call("GET", f"{API}/sessions/{_id(session_id)}/runs", Page[Run].model_validate,
                params=_page(limit, order, after, before))


def cancel_run(run_id: str) -> Call[Run]:
    return Call("POST", f"{API}/runs/{_id(run_id)}/cancel", Run.model_validate, idempotent=True)


def list_run_events(run_id: str, starting_after: int) -> Call[list[RunEvent]]:
    return Call("GET", run_events_path(run_id), _EVENTS.validate_python,
                params={"starting_after": starting_after or None})


def run_events_path(run_id: str) -> str:
    return f"{API}/runs/{_id(run_id)}/events"


def list_gallery(tag: str | None, limit: int | None, order: Order | None, after: str | None,
                 before: str | None) -> Call[Page[GalleryItem]]:
    return Call("GET", f"{API}/gallery", Page[GalleryItem].model_validate,
                params={"tag": tag, **_page(limit, order, after, before)})


def get_gallery_item(item_id: str) -> Call[GalleryItem]:
    return Call("GET", f"{API}/gallery/{_id(item_id)}", GalleryItem.model_validate)


def delete_gallery_item(item_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/gallery/{_id(item_id)}", _nothing)


def _nothing(body: Any) -> None:
    return None


def publish(session_id: str, tags: list[str], idempotency_key: str | None) -> Call[GalleryItem]:
    return Call("POST", f"{API}/sessions/{_id(session_id)}/publish", GalleryItem.model_validate,
                json={"tags": tags}, creates=True, idempotency_key=idempotency_key)
