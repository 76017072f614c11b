"""/api/v1/sessions and their messages."""

import asyncio
import itertools

from tests.support.api import create_session, send_and_wait
from tests.support.specs import autonomous_spec, openai_spec, sequential_spec

OTHER = {"X-User-Id": "mallory"}


class TestCreateSession:
    async def test_with_inline_workflow(self, client):
        session = await create_session(client, sequential_spec())
        assert session["id"].startswith("ses_") and session["workflow_id"].startswith("wf_")
        workflow = await client.get(f"/api/v1/workflows/{session['workflow_id']}")
        assert workflow.status_code == 200

    async def test_with_stored_workflow(self, client):
        workflow = (await client.post("/api/v1/workflows", json=sequential_spec())).json()
        response = await client.post("/api/v1/sessions", json={"name": "s", "workflow_id": workflow["id"]})
        assert response.status_code == 201 and response.json()["workflow_id"] == workflow["id"]

    async def test_invalid_inline_workflow_writes_nothing(self, client):
        response = await client.post("/api/v1/sessions", json={"workflow": sequential_spec(steps=["ghost"])})
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "workflow.steps[0]"
        assert (await client.get("/api/v1/sessions")).json()["data"] == []
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    async def test_other_users_workflow_is_404(self, client):
        workflow = (await client.post("/api/v1/workflows", json=sequential_spec())).json()
        response = await client.post("/api/v1/sessions", json={"workflow_id": workflow["id"]}, headers=OTHER)
        assert response.status_code == 404

    async def test_unknown_field(self, client):
        response = await client.post("/api/v1/sessions", json={"nam": "typo"})
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "nam"


class TestSessionReadUpdateDelete:
    async def test_patch_and_get(self, client):
        session = await create_session(client)
        patched = await client.patch(f"/api/v1/sessions/{session['id']}", json={"name": "renamed"})
        assert patched.json()["name"] == "renamed"
        assert (await client.get(f"/api/v1/sessions/{session['id']}")).json()["name"] == "renamed"

    async def test_delete_removes_messages_and_runs(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 2+2?")
        assert (await client.delete(f"/api/v1/sessions/{session['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/sessions/{session['id']}")).status_code == 404
        assert (await client.get(f"/api/v1/runs/{posted['run']['id']}")).status_code == 404

    async def test_other_users_session_is_404(self, client):
        session = await create_session(client)
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/messages"), ("GET", "/runs"),
                             ("DELETE", "/messages")):
            response = await client.request(method, f"/api/v1/sessions/{session['id']}{path}", headers=OTHER)
            assert response.status_code == 404, (method, path)
            assert response.json()["error"]["code"] == "session_not_found"
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi"},
                                     headers=OTHER)
        assert response.status_code == 404


class TestPostMessage:
    async def test_background_run_is_202(self, client, app):
        session = await create_session(client)
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "What is 1+1?"})
        assert response.status_code == 202
        body = response.json()
        assert body["message"]["role"] == "user" and body["run"]["status"] == "queued"
        run = await app.state.services.runs.wait(body["run"]["id"])
        assert run.status == "completed"

    async def test_wait_returns_reply_with_metadata(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 12*(3+4)?")
        assert posted["run"]["status"] == "completed"
        reply = posted["reply"]
        assert reply["role"] == "assistant" and "84" in reply["content"]
        metadata = reply["metadata"]
        assert [m["source"] for m in metadata["messages"]] == ["coder", "user_proxy", "coder"]
        assert metadata["code_executions"][0]["exit_code"] == 0
        assert metadata["code_executions"][0]["output"].strip() == "84"
        usage = metadata["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        expected_cost = usage["prompt_tokens"] / 1000 * 0.001 + usage["completion_tokens"] / 1000 * 0.002
        assert abs(metadata["cost"] - expected_cost) < 1e-12
        assert posted["run"]["cost"] == metadata["cost"]
        assert metadata["stop_reason"] == "Text 'TERMINATE' mentioned"
        assert metadata["started_at"] <= metadata["finished_at"]
        assert metadata["sandbox"] == "local" and metadata["sandbox_isolated"] is False

    async def test_history_lists_user_then_assistant(self, client):
        session = await create_session(client)
        await send_and_wait(client, session["id"], "What is 2+3?")
        await send_and_wait(client, session["id"], "What is 4+5?")
        listed = (await client.get(f"/api/v1/sessions/{session['id']}/messages?order=asc")).json()
        assert [m["role"] for m in listed["data"]] == ["user", "assistant", "user", "assistant"]

    async def test_history_is_replayed_into_the_next_run(self, client, fake_openai):
        spec = autonomous_spec(models={"default": {"provider": "openai", "model": "local-model",
                                                   "base_url": fake_openai.base_url}},
                               agents=[{"name": "assistant"}, {"name": "user_proxy", "kind": "userproxy"}],
                               receiver="assistant")
        session = await create_session(client, spec)
        await send_and_wait(client, session["id"], "My name is Ada.")
        await send_and_wait(client, session["id"], "What is my name?")
        contents = " ".join(str(m.get("content")) for m in fake_openai.chat_requests()[-1].messages)
        assert "My name is Ada." in contents and "What is my name?" in contents

    async def test_session_without_workflow_needs_one(self, client):
        session = (await client.post("/api/v1/sessions", json={"name": "empty"})).json()
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "workflow_required"
        assert (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"] == []

    async def test_session_whose_workflow_was_deleted_takes_no_message(self, client):
        session = await create_session(client)
        assert (await client.delete(f"/api/v1/workflows/{session['workflow_id']}")).status_code == 204
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "workflow_deleted"
        assert (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"] == []
        assert (await client.get(f"/api/v1/sessions/{session['id']}/runs")).json()["data"] == []

    async def test_message_can_name_another_workflow(self, client):
        session = await create_session(client)
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages?wait=true",
                                     json={"content": "Write about bees", "workflow": sequential_spec()})
        assert response.status_code == 200
        sources = [m["source"] for m in response.json()["reply"]["metadata"]["messages"]]
        assert sources == ["researcher", "writer"]

    async def test_empty_content_is_422(self, client):
        session = await create_session(client)
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": ""})
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "content"

    async def test_busy_session_is_409_and_enqueue_runs_in_order(self, client, app):
        session = await create_session(client)
        url = f"/api/v1/sessions/{session['id']}/messages"
        first = (await client.post(url, json={"content": "What is 1+1?"})).json()
        busy = await client.post(url, json={"content": "What is 2+2?"})
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "session_busy"
        queued = await client.post(url, json={"content": "What is 3+3?", "if_busy": "enqueue"})
        assert queued.status_code == 202
        runs = app.state.services.runs
        second = await runs.wait(queued.json()["run"]["id"])
        done_first = await runs.wait(first["run"]["id"])
        assert done_first.status == second.status == "completed"
        assert done_first.finished_at <= second.started_at
        messages = (await client.get(f"{url}?order=asc")).json()["data"]
        assert [m["content"] for m in messages if m["role"] == "user"] == ["What is 1+1?", "What is 3+3?"]

    async def test_messages_sent_at_once_to_one_session_start_one_run(self, client, app, fake_openai):
        # A model that takes its time: the first run is still active when the others arrive (a scripted run could
        # end first on a busy machine, and then accepting the next message is right; seen in CI).
        fake_openai.latency_ms = 1500
        session = await create_session(client, openai_spec(fake_openai.base_url))
        url = f"/api/v1/sessions/{session['id']}/messages"
        responses = await asyncio.gather(*(client.post(url, json={"content": f"What is {i}+{i}?"})
                                           for i in range(6)))
        assert sorted(r.status_code for r in responses) == [202] + [409] * 5
        [accepted] = [r.json() for r in responses if r.status_code == 202]
        assert (await app.state.services.runs.wait(accepted["run"]["id"])).status == "completed"
        users = [m for m in (await client.get(f"{url}?order=asc")).json()["data"] if m["role"] == "user"]
        assert [m["id"] for m in users] == [accepted["message"]["id"]]

    async def test_messages_enqueued_at_once_all_run_one_after_another(self, client, app):
        session = await create_session(client)
        url = f"/api/v1/sessions/{session['id']}/messages"
        responses = await asyncio.gather(*(client.post(url, json={"content": f"What is {i}+{i}?", "if_busy": "enqueue"})
                                           for i in range(4)))
        assert [r.status_code for r in responses] == [202] * 4
        runs = [await app.state.services.runs.wait(r.json()["run"]["id"]) for r in responses]
        assert [run.status for run in runs] == ["completed"] * 4
        # Timestamps are whole seconds: runs that started in the same second are ordered by when they finished.
        ordered = sorted(runs, key=lambda run: (run.started_at, run.finished_at))
        assert all(a.finished_at <= b.started_at for a, b in itertools.pairwise(ordered))
        assert sum(1 for m in (await client.get(f"{url}?order=asc")).json()["data"] if m["role"] == "user") == 4


class TestDeleteMessages:
    async def test_clear_and_delete_one(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 2+2?")
        one = await client.delete(f"/api/v1/messages/{posted['message']['id']}")
        assert one.status_code == 204
        remaining = (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"]
        assert [m["role"] for m in remaining] == ["assistant"]
        assert (await client.delete(f"/api/v1/sessions/{session['id']}/messages")).status_code == 204
        assert (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"] == []

    async def test_other_users_message_is_404(self, client):
        session = await create_session(client)
        posted = await send_and_wait(client, session["id"], "What is 2+2?")
        response = await client.delete(f"/api/v1/messages/{posted['message']['id']}", headers=OTHER)
        assert response.status_code == 404
