"""Run events over real HTTP: the live stream, resuming it, and the JSON list."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.server_api import API, create_session, read_stream
from tests.support.specs import autonomous_spec

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=60) as http:
        yield http


@pytest.fixture
def streamed(client: httpx.Client) -> tuple[str, list[dict[str, Any]]]:
    """A run of the autonomous spec, followed from the POST's own event stream."""
    session = create_session(client, autonomous_spec())
    response, events = read_stream(client, "POST", f"{API}/sessions/{session['id']}/messages",
                                   json={"content": "What is 12*(3+4)?"})
    assert response.headers["x-request-id"]
    return response.headers["x-run-id"], events


def assert_complete_sequence(events: list[dict[str, Any]]) -> None:
    types = [e["type"] for e in events]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert types[:2] == ["run.queued", "run.started"]
    assert types[-2:] == ["run.completed", "done"]
    assert set(types[2:-2]) <= {"message", "code.execution"}


class TestStream:
    def test_post_streams_the_whole_run(self, streamed):
        _, events = streamed
        assert_complete_sequence(events)
        types = [e["type"] for e in events]
        assert "code.execution" in types
        execution = next(e["data"] for e in events if e["type"] == "code.execution")
        assert execution["exit_code"] == 0 and execution["output"].strip() == "84"
        messages = [e["data"] for e in events if e["type"] == "message"]
        assert messages[0]["source"] == "coder" and "84" in messages[-1]["content"]
        assert events[-1]["data"] == {"status": "completed"}

    def test_follow_a_run_started_without_streaming(self, client):
        session = create_session(client, autonomous_spec())
        posted = client.post(f"{API}/sessions/{session['id']}/messages", json={"content": "What is 6*7?"})
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["run"]["id"]
        _, events = read_stream(client, "GET", f"{API}/runs/{run_id}/events")
        assert_complete_sequence(events)
        assert client.get(f"{API}/runs/{run_id}").json()["status"] == "completed"

    def test_resume_with_last_event_id(self, client, streamed):
        run_id, events = streamed
        for last in range(len(events)):
            _, replay = read_stream(client, "GET", f"{API}/runs/{run_id}/events", headers={"Last-Event-ID": str(last)})
            assert replay == events[last:], f"Last-Event-ID: {last}"

    def test_resume_with_starting_after(self, client, streamed):
        run_id, events = streamed
        _, replay = read_stream(client, "GET", f"{API}/runs/{run_id}/events", params={"starting_after": 3})
        assert replay == events[3:]

    def test_json_list_equals_the_stream(self, client, streamed):
        run_id, events = streamed
        response = client.get(f"{API}/runs/{run_id}/events")
        assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
        listed = response.json()
        assert [{k: e[k] for k in ("seq", "type", "data", "created_at")} for e in listed] == events
        assert {e["object"] for e in listed} == {"run.event"}
        after = client.get(f"{API}/runs/{run_id}/events", headers={"Last-Event-ID": "4"}).json()
        assert [e["seq"] for e in after] == [e["seq"] for e in events[4:]]

    def test_bad_last_event_id(self, client, streamed):
        run_id, _ = streamed
        response = client.get(f"{API}/runs/{run_id}/events", headers={"Last-Event-ID": "abc"})
        assert response.status_code == 400
        assert response.json() == {"error": {"type": "invalid_request_error",
                                             "message": "Last-Event-ID must be an event sequence number",
                                             "param": "Last-Event-ID", "code": "invalid_request"}}
