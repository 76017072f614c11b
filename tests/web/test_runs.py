"""/api/v1/runs: reading, events, cancel, failures."""

import asyncio

from tests.support.api import create_session, send_and_wait
from tests.support.specs import openai_spec

OTHER = {"X-User-Id": "mallory"}


class TestGetRun:
    async def test_completed_run(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        run = (await client.get(f"/api/v1/runs/{posted['run']['id']}")).json()
        assert run["object"] == "run" and run["status"] == "completed" and run["error"] is None
        assert run["usage"]["total_tokens"] > 0 and run["reply_message_id"] == posted["reply"]["id"]
        listed = (await client.get(f"/api/v1/sessions/{session['id']}/runs")).json()
        assert [r["id"] for r in listed["data"]] == [run["id"]]

    async def test_unknown_run(self, client):
        response = await client.get("/api/v1/runs/run_nope")
        assert response.status_code == 404
        assert response.json() == {"error": {"type": "not_found_error", "code": "run_not_found",
                                             "param": "run_id", "message": "no run with id 'run_nope'"}}

    async def test_other_users_run_is_404(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        run_id = posted["run"]["id"]
        assert (await client.get(f"/api/v1/runs/{run_id}", headers=OTHER)).status_code == 404
        assert (await client.post(f"/api/v1/runs/{run_id}/cancel", headers=OTHER)).status_code == 404
        assert (await client.get(f"/api/v1/runs/{run_id}/events", headers=OTHER)).status_code == 404


class TestRunEvents:
    async def test_json_events_in_order(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        events = (await client.get(f"/api/v1/runs/{posted['run']['id']}/events")).json()
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        types = [e["type"] for e in events]
        assert types == ["run.queued", "run.started", "message", "code.execution", "message", "message",
                         "run.completed", "done"]
        execution = events[3]["data"]
        assert execution["exit_code"] == 0 and execution["output"].strip() == "42"

    async def test_starting_after(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        events = (await client.get(f"/api/v1/runs/{posted['run']['id']}/events?starting_after=5")).json()
        assert [e["seq"] for e in events] == [6, 7, 8]

    async def test_sse_replay_of_a_finished_run(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        response = await client.get(f"/api/v1/runs/{posted['run']['id']}/events",
                                    headers={"Accept": "text/event-stream", "Last-Event-ID": "6"})
        assert response.headers["content-type"].startswith("text/event-stream")
        ids = [line[4:] for line in response.text.splitlines() if line.startswith("id: ")]
        assert ids == ["7", "8"]
        assert "event: done" in response.text

    async def test_bad_last_event_id(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        response = await client.get(f"/api/v1/runs/{posted['run']['id']}/events",
                                    headers={"Accept": "text/event-stream", "Last-Event-ID": "abc"})
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "Last-Event-ID"


class TestCancelRun:
    async def test_cancel_during_a_model_call(self, client, app, fake_openai):
        fake_openai.latency_ms = 5000
        session = await create_session(client, openai_spec(fake_openai.base_url))
        posted = (await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi"})).json()
        run_id = posted["run"]["id"]
        for _ in range(100):
            if fake_openai.chat_requests():
                break
            await asyncio.sleep(0.05)
        response = await client.post(f"/api/v1/runs/{run_id}/cancel")
        assert response.status_code == 200
        assert response.json()["status"] in ("cancelling", "cancelled")
        run = await app.state.services.runs.wait(run_id, limit_s=5)
        assert run.status == "cancelled"
        again = (await client.post(f"/api/v1/runs/{run_id}/cancel")).json()
        assert again["status"] == "cancelled" and again["finished_at"] == run.finished_at
        types = [e["type"] for e in (await client.get(f"/api/v1/runs/{run_id}/events")).json()]
        assert types[-2:] == ["run.cancelled", "done"]
        messages = (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"]
        assert [m["role"] for m in messages] == ["user"]

    async def test_cancelling_a_finished_run_returns_it_unchanged(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 6*7?")
        response = await client.post(f"/api/v1/runs/{posted['run']['id']}/cancel")
        assert response.json() == posted["run"]


class TestFailingModelEndpoint:
    async def test_server_errors_fail_the_run_and_keep_the_message(self, client, fake_openai):
        fake_openai.fail_always(status=500)
        session = await create_session(client, openai_spec(fake_openai.base_url))
        posted = await send_and_wait(client, session["id"], "hello")
        run = posted["run"]
        assert run["status"] == "failed"
        assert run["error"] == {"type": "model_server_error", "message": "the model endpoint answered HTTP 500"}
        messages = (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"]
        assert [m["content"] for m in messages] == ["hello"]
        types = [e["type"] for e in (await client.get(f"/api/v1/runs/{run['id']}/events")).json()]
        assert types == ["run.queued", "run.started", "run.failed", "done"]

    async def test_unreachable_endpoint(self, client):
        session = await create_session(client, openai_spec("http://127.0.0.1:9/v1"))
        run = (await send_and_wait(client, session["id"], "hello"))["run"]
        assert run["status"] == "failed" and run["error"]["type"] == "model_connection_error"

    async def test_message_limit_ends_the_run_incomplete_with_a_stop_reason(self, client, fake_openai):
        fake_openai.terminate_after = None
        spec = openai_spec(fake_openai.base_url, termination={"text": "TERMINATE", "max_messages": 3})
        session = await create_session(client, spec)
        posted = await send_and_wait(client, session["id"], "talk forever")
        assert posted["run"]["status"] == "incomplete"
        assert posted["run"]["incomplete_details"] == {"reason": "max_messages"}
        assert posted["reply"]["metadata"]["incomplete_details"] == {"reason": "max_messages"}
        assert posted["run"]["stop_reason"].startswith("Maximum number of messages 3 reached")
        assert len(posted["reply"]["metadata"]["messages"]) == 3
