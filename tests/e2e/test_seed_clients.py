"""Clients written for the seed backend, against a real server: the shapes its `src/web/testing/*.py` scripts send.

The seed data model: `receiver` is one agent object or a list of them; the same agents appear again under
`agents` as `{"agent": {...}, "link": {"agent_type": ...}}`, sometimes with another `system_message`; agent
configs carry fields we do not read; a groupchat receiver holds its members under `config.agents`. The scripts
treat any status but 200 as "unable to connect", and start by clearing a session that does not exist yet.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

USER = "hannahsun"
LLM = {"config_list": [{"model": "gpt-4"}], "temperature": 0.1, "cache_seed": 42, "timeout": 600}


def agent(name: str, kind: str = "assistant", system_message: str = "You are a helpful assistant.",
          **config: Any) -> dict[str, Any]:
    """An agent as the seed clients write it, extra fields included."""
    body: dict[str, Any] = {"name": name, "system_message": system_message, "is_termination_msg": None,
                            "messages": [], "max_consecutive_auto_reply": 8, "human_input_mode": "NEVER",
                            "code_execution_config": False, **config}
    if kind == "assistant" and "llm_config" not in config:
        body["llm_config"] = LLM
    return {"type": kind, "description": f"the {name}", "config": body, "skills": None}


def user_proxy() -> dict[str, Any]:
    return agent("user_proxy", "userproxy", system_message="", llm_config=False)


def linked(spec: dict[str, Any], role: str) -> dict[str, Any]:
    return {"agent": spec, "link": {"agent_type": role}}


def autonomous_flow() -> dict[str, Any]:
    """A list receiver, and a linked entry whose system_message differs from the receiver's."""
    primary = agent("primary_assistant", system_message="You solve tasks. Reply TERMINATE when done.")
    relinked = agent("primary_assistant", system_message="You are the linked primary assistant.")
    return {"name": "General Agent Workflow", "description": "default", "type": "default",
            "sender": user_proxy(), "receiver": [primary],
            "agents": [linked(user_proxy(), "sender"), linked(relinked, "receiver")], "timestamp": "2024-01-01"}


def groupchat_flow() -> dict[str, Any]:
    """A groupchat receiver whose members are under `config.agents`, one wrapped and one plain."""
    planner = agent("planner", system_message="You plan the work.")
    critic = agent("critic", system_message="You review the plan. Say TERMINATE when it is good.")
    group = agent("group_chat_manager", "groupchat", system_message="Group chat manager",
                  agents=[{"agent": planner, "link": None}, critic], allow_repeat_speaker=False, max_round=6)
    return {"name": "Group Chat Workflow", "type": "groupchat", "sender": user_proxy(), "receiver": group,
            "agents": [linked(user_proxy(), "sender"), linked(group, "receiver")]}


def sequential_flow() -> dict[str, Any]:
    """A list of receivers run in order, plus a dangling link (an agent nothing else refers to)."""
    researcher = agent("researcher", system_message="You research. Reply TERMINATE when done.")
    writer = agent("writer", system_message="You write. Reply TERMINATE when done.", no_such_field={"x": 1})
    spare = agent("spare_agent", system_message="Nobody talks to me.", llm_config=None)
    return {"name": "Sequential Workflow", "type": "sequential", "sender": user_proxy(),
            "receiver": [researcher, writer],
            "agents": [linked(user_proxy(), "sender"), {"agent": spare, "link": None},
                       linked(researcher, "receiver"), linked(writer, "receiver")],
            "unknown_top_level": True}


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.url}: {response.status_code} {response.text}"
    body = response.json()
    assert body["status"] is True, body
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize("flow", [autonomous_flow, groupchat_flow, sequential_flow])
def test_a_seed_client_runs_its_flow_end_to_end(base_url: str, flow: Any) -> None:
    session_id = f"firsttest-{uuid.uuid4().hex[:8]}"
    flow_config = flow()
    with httpx.Client(base_url=base_url, timeout=120) as client:
        ok(client.post("/api/cleardb", json={"user_id": USER, "session_id": session_id}))
        created = ok(client.post("/api/sessions", json={"user_id": USER, "session": {
            "user_id": USER, "session_id": session_id, "flow_config": flow_config}}))
        assert created["data"][0]["external_id"] == session_id
        message = {"user_id": USER, "role": "user", "content": "What is 12*(3+4)?", "session_id": session_id,
                   "msg_id": str(uuid.uuid4()), "timestamp": "2024-01-01T00:00:00", "personalize": False}
        reply = ok(client.post("/api/messages", json={"message": message, "flow_config": flow_config}))
        assert reply["message"], reply
        history = ok(client.get("/api/messages", params={"user_id": USER, "session_id": session_id}))["data"]
        assert [m["role"] for m in history] == ["user", "assistant"]
        assert history[1]["content"] == reply["message"]
        published = ok(client.post("/api/sessions/publish", json={
            "user_id": USER, "session": {"user_id": USER, "session_id": session_id, "flow_config": flow_config},
            "tags": ["seed-client"]}))
        gallery = ok(client.get("/api/gallery", params={"gallery_id": published["data"]["id"]}))["data"]
        assert [item["id"] for item in gallery] == [published["data"]["id"]]
        remaining = ok(client.post("/api/messages/delete", json={"user_id": USER, "msg_id": history[0]["msg_id"],
                                                                 "session_id": session_id}))["data"]
        assert [m["id"] for m in remaining] == [history[1]["id"]]
        ok(client.post("/api/messages/delete", json={"user_id": USER, "msg_id": history[0]["msg_id"],
                                                     "session_id": session_id}))
        assert ok(client.post("/api/cleardb", json={"user_id": USER, "session_id": session_id}))["data"] == []


def test_the_linked_entrys_config_is_used_and_the_notes_say_so(base_url: str) -> None:
    session_id = f"linked-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        created = ok(client.post("/api/sessions", json={"user_id": USER, "session": {
            "user_id": USER, "session_id": session_id, "flow_config": autonomous_flow()}}))
    spec = created["data"][0]["flow_config"]
    primary = next(a for a in spec["agents"] if a["name"] == "primary_assistant")
    assert primary["system_message"] == "You are the linked primary assistant."
    assert ("session.flow_config.receiver[0] differs from session.flow_config.agents[1].agent in system_message; "
            "the config of session.flow_config.agents[1].agent was used") in spec["description"]


def test_a_malformed_flow_is_422_naming_the_seed_path(base_url: str) -> None:
    flow = autonomous_flow()
    flow["receiver"] = [{"type": "robot", "config": {"name": "x"}}]
    response = httpx.post(f"{base_url}/api/sessions", json={"user_id": USER, "session": {
        "user_id": USER, "session_id": "bad-flow", "flow_config": flow}}, timeout=30)
    assert response.status_code == 422
    body = response.json()
    assert body["status"] is False and body["data"]["param"].startswith("session.flow_config.receiver[0].type")


def test_a_bad_key_is_401(apikey_server) -> None:
    response = httpx.post(f"{apikey_server.base_url}/api/cleardb", json={"user_id": USER, "session_id": "x"},
                          headers={"Authorization": "Bearer ab-wrong"}, timeout=30)
    assert response.status_code == 401
