"""Requests to a server process (`servers.py`) over real HTTP: a strict reader of the run event stream and
the common requests."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
API = "/api/v1"
# The exact frame the contract promises: `id: N`, `event: TYPE`, `data: {json}`, blank line.
_FRAME = re.compile(r"id: (\d+)\nevent: ([a-z.]+)\ndata: (\{.*\})")


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Every event of a raw stream, checking each frame's shape; keep-alive comments are skipped."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip() or all(line.startswith(":") for line in block.splitlines()):
            continue
        match = _FRAME.fullmatch(block)
        assert match, f"malformed SSE frame: {block!r}"
        payload = json.loads(match.group(3))
        assert set(payload) == {"seq", "type", "data", "created_at"}, payload
        assert payload["seq"] == int(match.group(1)) and payload["type"] == match.group(2), block
        events.append(payload)
    return events


def read_stream(client: httpx.Client, method: str, url: str,
                **kwargs: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    headers = {"Accept": "text/event-stream", **kwargs.pop("headers", {})}
    with client.stream(method, url, headers=headers, **kwargs) as response:
        text = response.read().decode()
    assert response.status_code == 200, text
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, parse_sse(text)


def create_session(client: httpx.Client, spec: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = client.post(f"{API}/sessions", json={"workflow": spec}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], T], timeout: float = 30.0, step: float = 0.05) -> T:
    """Poll until `predicate` returns something truthy, and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not reached in time")


def message_events(base: str, run_id: str) -> list[dict[str, Any]]:
    """The `message` events of a run, read over HTTP from the server at `base`."""
    return [e for e in httpx.get(f"{base}{API}/runs/{run_id}/events").json() if e["type"] == "message"]


def run_to_end(base: str, spec: dict[str, Any], content: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A new session on `spec`, `content` sent with `?wait=true`: the posted body and the run's events."""
    with httpx.Client(base_url=base, timeout=120) as client:
        session = create_session(client, spec)
        posted = client.post(f"{API}/sessions/{session['id']}/messages", params={"wait": "true"},
                             json={"content": content})
        assert posted.status_code == 200, posted.text
        events = client.get(f"{API}/runs/{posted.json()['run']['id']}/events").json()
    return posted.json(), events


def events_of(base: str, run_id: str, kind: str) -> list[dict[str, Any]]:
    """The data of a run's events of one type, read over HTTP from the server at `base`."""
    return [e["data"] for e in httpx.get(f"{base}{API}/runs/{run_id}/events").json() if e["type"] == kind]
