"""/api: the seed-era endpoints, end to end on the scripted model (no network beyond loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from autobots.config import Settings
from autobots.users import service as user_service

from tests.support.seed import QUESTION, assistant, autonomous_flow, message_body, userproxy

SECRET = "sk-seed-SECRET-0123456789abcdef"


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed llm configs without a key fall back to the server default (scripted) only when no key is set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


async def post_message(client: httpx.AsyncClient, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response = await client.post("/api/messages", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestPostMessage:
    async def test_valid(self, client: httpx.AsyncClient) -> None:
        answer = await post_message(client, message_body())
        assert answer["status"] is True, answer
        assert "84" in answer["message"]
        metadata = answer["metadata"]
        assert metadata["content"] == answer["message"] and metadata["role"] == "assistant"
        for key in ("usage", "cost", "start_time", "end_time", "run_id", "session_id"):
            assert key in metadata, key
        assert metadata["start_time"].endswith("Z")
        assert {"usage", "cost", "started_at", "finished_at"} <= set(metadata["metadata"])
        assert answer["data"]["run"]["status"] == "completed"

    async def test_same_seed_session_is_one_session(self, client: httpx.AsyncClient) -> None:
        first = await post_message(client, message_body())
        second = await post_message(client, message_body("Now what is 2+3?"))
        assert second["status"] is True
        assert first["metadata"]["session_id"] == second["metadata"]["session_id"]
        response = await client.get("/api/messages", params={"user_id": "user@example.com",
                                                             "session_id": "seed-session-1"})
        assert response.status_code == 200
        messages = response.json()["data"]
        assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
        assert messages[0]["content"] == QUESTION
        assert messages[0]["msg_id"] == messages[0]["id"] and messages[0]["timestamp"].endswith("Z")
        sessions = (await client.get("/api/sessions", params={"user_id": "user@example.com"})).json()["data"]
        assert len(sessions) == 1 and sessions[0]["external_id"] == "seed-session-1"

    async def test_resending_the_same_flow_reuses_its_workflow(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body())
        await post_message(client, message_body("Now what is 2+3?"))
        workflows = (await client.get("/api/v1/workflows", headers={"X-User-Id": "user@example.com"})).json()
        assert len(workflows["data"]) == 1

    async def test_our_session_id_is_accepted(self, client: httpx.AsyncClient) -> None:
        first = await post_message(client, message_body())
        ours = first["metadata"]["session_id"]
        second = await post_message(client, message_body("What is 2+3?", session_id=ours))
        assert second["metadata"]["session_id"] == ours

    async def test_groupchat_receiver(self, client: httpx.AsyncClient) -> None:
        group = {"type": "groupchat", "config": {"name": "group_chat_manager",
                                                 "llm_config": {"config_list": [{"model": "gpt-4"}]}},
                 "groupchat_config": {"agents": [assistant("coder"), assistant("critic", system_message="You review.")],
                                      "max_round": 10, "speaker_selection_method": "round_robin"}}
        answer = await post_message(client, message_body(flow=autonomous_flow(type="groupchat", receiver=group)))
        assert answer["status"] is True, answer
        workflow = (await client.get(f"/api/v1/workflows/{answer['data']['run']['workflow_id']}",
                                     headers={"X-User-Id": "user@example.com"})).json()
        assert workflow["spec"]["receiver"] == "group_chat_manager"
        assert workflow["spec"]["groupchat"]["agents"] == ["coder", "critic"]

    async def test_sequential(self, client: httpx.AsyncClient) -> None:
        flow = {"name": "research then write", "type": "sequential", "sender": "user_proxy",
                "agents": [{"agent": userproxy(code_execution_config=False), "link": {"agent_type": "sender"}},
                           {"agent": assistant("researcher", system_message="You are a researcher."),
                            "link": {"agent_type": "receiver"}},
                           {"agent": assistant("writer", system_message="You are a writer."),
                            "link": {"agent_type": "receiver"}}]}
        answer = await post_message(client, message_body("Write about otters.", flow=flow))
        assert answer["status"] is True, answer
        assert answer["message"]

    async def test_invalid_flow_config(self, client: httpx.AsyncClient) -> None:
        flow = autonomous_flow(receiver={"type": "robot", "config": {"name": "x"}})
        response = await client.post("/api/messages", json=message_body(flow=flow))
        assert response.status_code == 422
        body = response.json()
        assert body["status"] is False
        assert body["message"] == ("flow_config.receiver.type: Input should be 'assistant', 'userproxy' or "
                                   "'groupchat'")
        assert body["data"]["param"] == "flow_config.receiver.type"

    async def test_invalid_translated_spec_names_the_seed_path(self, client: httpx.AsyncClient) -> None:
        flow = autonomous_flow(receiver="nobody")
        response = await client.post("/api/messages", json=message_body(flow=flow))
        assert response.status_code == 422
        assert response.json()["message"] == ("flow_config.receiver: 'nobody' is neither an agent nor the "
                                              "groupchat of this workflow")
        sessions = (await client.get("/api/sessions", params={"user_id": "user@example.com"})).json()
        assert sessions == {"status": True, "message": "sessions retrieved", "data": []}

    async def test_invalid_body(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/messages", json={"message": {"session_id": "s"}})
        assert response.status_code == 422
        assert response.json() == {"status": False, "message": "message.content: Field required",
                                   "data": {"type": "invalid_request_error", "code": "invalid_value",
                                            "param": "message.content",
                                            "errors": [{"path": "message.content", "message": "Field required"}]}}

    async def test_invalid_json(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/messages", content=b"{nope", headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json() == {"status": False, "message": "the body is not valid JSON",
                                   "data": {"type": "invalid_request_error", "code": "invalid_json", "param": None}}

    async def test_inline_api_key_is_never_returned(self, client: httpx.AsyncClient, fake_openai: Any) -> None:
        helper = assistant()
        helper["config"]["llm_config"]["config_list"] = [{"model": "fake-model", "api_key": SECRET,
                                                          "base_url": fake_openai.base_url}]
        texts = []
        response = await client.post("/api/messages", json=message_body("Hello", flow=autonomous_flow(receiver=helper)))
        texts.append(response.text)
        answer = response.json()
        assert answer["status"] is True, answer
        assert fake_openai.chat_requests()[0].authorization == f"Bearer {SECRET}"
        user = {"user_id": "user@example.com"}
        headers = {"X-User-Id": "user@example.com"}
        texts.append((await client.get("/api/sessions", params=user)).text)
        texts.append((await client.get("/api/messages", params={**user, "session_id": "seed-session-1"})).text)
        texts.append((await client.get(f"/api/v1/workflows/{answer['data']['run']['workflow_id']}",
                                       headers=headers)).text)
        texts.append((await client.get("/api/v1/workflows", headers=headers)).text)
        texts.append((await client.get(f"/api/v1/runs/{answer['data']['run']['id']}", headers=headers)).text)
        publish = {**user, "session": {"session_id": "seed-session-1"}, "tags": ["t"]}
        published = await client.post("/api/sessions/publish", json=publish)
        texts.append(published.text)
        texts.append((await client.get("/api/gallery", params={"gallery_id": published.json()["data"]["id"]})).text)
        for text in texts:
            assert SECRET not in text
        assert "fake-model" in texts[1]


class TestSessions:
    async def test_create_and_list(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/sessions", json={"user_id": "u1", "session": {"user_id": "u1"}})
        response = await client.post("/api/sessions", json={
            "user_id": "u1", "session": {"user_id": "u1", "flow_config": autonomous_flow(), "session_id": "mine"}})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] is True and len(body["data"]) == 2
        created = body["data"][0]
        assert created["external_id"] == "mine" and created["session_id"].startswith("ses_")
        assert created["flow_config"]["receiver"] == "primary_assistant"
        listed = (await client.get("/api/sessions", params={"user_id": "u1"})).json()["data"]
        assert [row["id"] for row in listed] == [row["id"] for row in body["data"]]
        answer = await post_message(client, message_body(user_id="u1", session_id="mine"))
        assert answer["metadata"]["session_id"] == created["id"]

    async def test_unknown_session(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/messages", params={"user_id": "u1", "session_id": "nope"})
        assert response.status_code == 404
        assert response.json() == {"status": False, "message": "no session with id 'nope'",
                                   "data": {"type": "not_found_error", "code": "session_not_found",
                                            "param": "session_id"}}

    async def test_other_users_session(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body(user_id="alice", session_id="shared-name"))
        response = await client.get("/api/messages", params={"user_id": "bob", "session_id": "shared-name"})
        assert response.status_code == 404

    async def test_missing_query(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/messages", params={"user_id": "u1"})
        assert response.status_code == 422
        assert response.json()["message"] == "session_id: Field required"


class TestPublishAndGallery:
    async def test_valid(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body())
        response = await client.post("/api/sessions/publish", json={
            "user_id": "user@example.com", "session": {"user_id": "user@example.com", "session_id": "seed-session-1"},
            "tags": ["math"]})
        assert response.status_code == 200
        item = response.json()["data"]
        assert item["object"] == "gallery_item" and item["tags"] == ["math"] and len(item["messages"]) == 2
        one = (await client.get("/api/gallery", params={"gallery_id": item["id"]})).json()
        assert one["status"] is True and [i["id"] for i in one["data"]] == [item["id"]]
        every = (await client.get("/api/gallery")).json()["data"]
        assert [i["id"] for i in every] == [item["id"]]

    async def test_unknown_gallery_item(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/gallery", params={"gallery_id": "gal_nope"})
        assert response.status_code == 404
        assert response.json() == {"status": False, "message": "no gallery item with id 'gal_nope'",
                                   "data": {"type": "not_found_error", "code": "gallery_item_not_found",
                                            "param": "gallery_id"}}

    async def test_unknown_session(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/sessions/publish", json={"user_id": "u", "session": {"session_id": "x"},
                                                                     "tags": []})
        assert response.status_code == 404


class TestDeleteAndClear:
    async def test_delete_message(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body())
        params = {"user_id": "user@example.com", "session_id": "seed-session-1"}
        messages = (await client.get("/api/messages", params=params)).json()["data"]
        response = await client.post("/api/messages/delete", json={**params, "msg_id": messages[0]["msg_id"]})
        assert response.status_code == 200
        assert [m["id"] for m in response.json()["data"]] == [messages[1]["id"]]

    async def test_delete_of_a_foreign_message_deletes_nothing_and_answers_200(self, client: httpx.AsyncClient):
        await post_message(client, message_body())
        params = {"user_id": "user@example.com", "session_id": "seed-session-1"}
        msg_id = (await client.get("/api/messages", params=params)).json()["data"][0]["id"]
        response = await client.post("/api/messages/delete", json={"user_id": "mallory", "msg_id": msg_id})
        assert response.status_code == 200
        assert response.json() == {"status": True, "message": "no such message: nothing deleted", "data": []}
        assert len((await client.get("/api/messages", params=params)).json()["data"]) == 2

    async def test_delete_of_an_unknown_message_answers_what_remains(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body())
        params = {"user_id": "user@example.com", "session_id": "seed-session-1"}
        response = await client.post("/api/messages/delete", json={**params, "msg_id": "msg_nope"})
        assert response.status_code == 200
        body = response.json()
        assert body["status"] is True and len(body["data"]) == 2

    async def test_clearing_a_session_that_does_not_exist_yet_answers_200(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/cleardb", json={"user_id": "hannahsun", "session_id": "firsttest"})
        assert response.status_code == 200
        assert response.json() == {"status": True, "message": "no such session: nothing to clear", "data": []}

    async def test_clear(self, client: httpx.AsyncClient) -> None:
        await post_message(client, message_body())
        params = {"user_id": "user@example.com", "session_id": "seed-session-1"}
        response = await client.post("/api/cleardb", json=params)
        assert response.json() == {"status": True, "message": "messages cleared", "data": []}
        assert (await client.get("/api/messages", params=params)).json()["data"] == []


@pytest.fixture
async def apikey_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """The app in apikey mode with users alice and bob, and alice's key."""
    from autobots.web import create_app

    application = create_app(settings.model_copy(update={"auth_mode": "apikey"}))
    async with application.router.lifespan_context(application):
        async with application.state.services.db.session() as session:
            alice = await user_service.get_or_create(session, name="alice")
            bob = await user_service.get_or_create(session, name="bob")
            key = await user_service.create_api_key(session, user=alice)
            users = {"alice": alice.id, "bob": bob.id, "key": key}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
            yield http, users


class TestApiKeyMode:
    async def test_own_user(self, apikey_client: tuple[httpx.AsyncClient, dict[str, Any]]) -> None:
        client, users = apikey_client
        auth = {"Authorization": f"Bearer {users['key']}"}
        for user_id in ("alice", users["alice"]):
            answer = await post_message(client, message_body(user_id=user_id), headers=auth)
            assert answer["status"] is True
        sessions = (await client.get("/api/sessions", params={"user_id": "alice"}, headers=auth)).json()["data"]
        assert len(sessions) == 1 and sessions[0]["user_id"] == users["alice"]

    async def test_other_user(self, apikey_client: tuple[httpx.AsyncClient, dict[str, Any]]) -> None:
        client, users = apikey_client
        auth = {"Authorization": f"Bearer {users['key']}"}
        for user_id in ("bob", users["bob"], "carol"):
            response = await client.post("/api/messages", json=message_body(user_id=user_id), headers=auth)
            assert response.status_code == 404
            assert response.json() == {"status": False, "message": f"no user '{user_id}'",
                                       "data": {"type": "not_found_error", "code": "user_not_found",
                                                "param": "user_id"}}
        response = await client.get("/api/sessions", params={"user_id": "bob"}, headers=auth)
        assert response.status_code == 404

    async def test_no_key(self, apikey_client: tuple[httpx.AsyncClient, dict[str, Any]]) -> None:
        client, _ = apikey_client
        response = await client.get("/api/sessions", params={"user_id": "alice"})
        assert response.status_code == 401
        assert response.json() == {"status": False,
                                   "message": "an API key is required: send 'Authorization: Bearer <api key>'",
                                   "data": {"type": "authentication_error", "code": "missing_api_key",
                                            "param": None}}


async def test_openapi_documents_the_seed_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    post = document["paths"]["/api/messages"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SeedMessageRequest")
    assert post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/SeedError")
    assert "AgentWorkFlowConfig" in document["components"]["schemas"]


class TestBusySession:
    async def test_busy(self, client: httpx.AsyncClient, fake_openai: Any) -> None:
        fake_openai.latency_ms = 1500
        spec = {"name": "slow", "type": "autonomous",
                "models": {"default": {"provider": "openai", "model": "fake-model", "base_url": fake_openai.base_url}},
                "agents": [{"name": "helper"}, {"name": "user_proxy", "kind": "userproxy"}],
                "sender": "user_proxy", "receiver": "helper"}
        session = (await client.post("/api/v1/sessions", json={"workflow": spec})).json()
        posted = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "Hello"})
        assert posted.status_code == 202
        before = (await client.get("/api/v1/workflows")).json()["data"]
        response = await client.post("/api/messages", json=message_body(user_id="local", session_id=session["id"]))
        assert response.status_code == 409
        body = response.json()
        assert body["status"] is False and body["data"]["code"] == "session_busy"
        assert body["message"].startswith(f"session '{session['id']}' already has an active run")
        assert (await client.get("/api/v1/workflows")).json()["data"] == before  # rolled back
