"""Hierarchies end to end: a real server runs a board -> executives -> workers tree through the real OpenAI
client against an OpenAI-compatible server on loopback that answers with tool calls per model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.model_script import ModelScript
from tests.support.openai_server import FakeOpenAIServer, RecordedRequest
from tests.support.server_api import API, events_of, run_to_end, wait_for
from tests.support.servers import killed_mid_run

pytestmark = pytest.mark.e2e


def call(tool: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": tool, "arguments": arguments}]}


def tree_spec(base_url: str, **member_overrides: Any) -> dict[str, Any]:
    def model(name: str) -> dict[str, Any]:
        return {"provider": "openai", "model": f"{name}-model", "base_url": base_url,
                "capabilities": ["function_calling"]}

    members = {
        "board": {"children": ["research", "engineering"],
                  "privileges": {"models": ["large", "small"], "max_tokens": 200_000,
                                 "spawn": {"templates": ["worker"], "max_children": 4}}},
        "research": {"privileges": {"models": ["small"], "max_tokens": 50_000}},
        "engineering": {"children": ["worker_1"],
                        "privileges": {"models": ["small"], "max_tokens": 80_000,
                                       "spawn": {"templates": ["worker"], "max_children": 1}}},
        "worker_1": {"privileges": {"models": ["small"], "max_tokens": 20_000}},
    }
    for name, override in member_overrides.items():
        members[name] = override
    return {
        "name": "company", "type": "hierarchy",
        "models": {"large": model("large"), "small": model("small"), "tiny": model("tiny")},
        "agents": [{"name": "board", "model": "large"}, {"name": "research", "model": "small"},
                   {"name": "engineering", "model": "small"}, {"name": "worker_1", "model": "small"}],
        "hierarchy": {"root": "board", "members": members,
                      "templates": {"worker": {"system_message": "You do one job.", "model": "small"},
                                    "analyst": {"system_message": "You analyse.", "model": "tiny"}},
                      "limits": {"max_depth": 3, "max_agents": 12}},
    }


class Org:
    """Scripts each agent (by its system prompt's first words, as the fake server sees the requests): a plan of
    tool calls, then a final answer that lists what its tools said."""

    def __init__(self, plans: dict[str, list[dict[str, Any]]]) -> None:
        self.plans = plans

    def __call__(self, request: RecordedRequest) -> str | dict[str, Any]:
        name = self.agent_of(request)
        done = len(request.tool_results())
        plan = self.plans.get(name, [])
        if done < len(plan):
            return plan[done]
        said = " | ".join(request.tool_results())
        return f"{name} reports: {said}" if said else f"{name} did: {request.last_user_text()}"

    @staticmethod
    def agent_of(request: RecordedRequest) -> str:
        for message in request.messages:
            if message.get("role") == "system":
                text = str(message.get("content"))
                for name in ("board", "research", "engineering", "worker_1", "spawned"):
                    if text.startswith(f"[{name}]"):
                        return name
        return "?"


def with_prompts(spec: dict[str, Any]) -> dict[str, Any]:
    for agent in spec["agents"]:
        agent["system_message"] = f"[{agent['name']}] You work in a company."
    spec["hierarchy"]["templates"]["worker"]["system_message"] = "[spawned] You do one job."
    spec["hierarchy"]["templates"]["analyst"]["system_message"] = "[spawned] You analyse."
    return spec


def run_tree(base: str, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return run_to_end(base, spec, "Build a weather app")


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == kind]


def scripted(script: ModelScript, org: Org) -> None:
    script.answers = {name: org for name in ("large-model", "small-model", "tiny-model")}


def test_a_three_level_delegation_returns_the_workers_results_to_the_root(base_url, model_server) -> None:
    server, script = model_server
    scripted(script, Org({
        "board": [call("delegate", to="research", task="find weather APIs"),
                  call("delegate", to="engineering", task="build the app")],
        "engineering": [call("delegate", to="worker_1", task="write the fetcher")]}))
    posted, events = run_tree(base_url, with_prompts(tree_spec(server.base_url)))
    assert posted["run"]["status"] == "completed", posted["run"]
    assert [d["path"] for d in of_type(events, "hierarchy.delegate")] == \
        ["board/research", "board/engineering", "board/engineering/worker_1"]
    results = {r["path"]: r["result"] for r in of_type(events, "hierarchy.result")}
    assert results["board/engineering/worker_1"] == "worker_1 did: write the fetcher"
    assert results["board/engineering"] == "engineering reports: worker_1 did: write the fetcher"
    assert posted["reply"]["content"] == \
        "board reports: research did: find weather APIs | engineering reports: worker_1 did: write the fetcher"
    tree = posted["reply"]["metadata"]["hierarchy"]["tree"]
    assert [c["path"] for c in tree["children"]] == ["board/research", "board/engineering"]
    assert {r.body.get("tools") is not None for r in server.chat_requests() if r.model == "large-model"} == {True}


def test_spawns_past_max_children_or_of_a_template_not_allowed_are_refused_and_the_run_goes_on(
        base_url, model_server) -> None:
    server, script = model_server
    scripted(script, Org({
        "board": [call("delegate", to="engineering", task="staff up")],
        "engineering": [call("spawn_agent", template="worker", name="helper_a", instructions="help"),
                        call("spawn_agent", template="worker", name="helper_b", instructions="help more"),
                        call("spawn_agent", template="analyst", name="helper_c", instructions="analyse"),
                        call("delegate", to="helper_a", task="do the job"),
                        call("terminate_agent", name="helper_a")]}))
    posted, events = run_tree(base_url, with_prompts(tree_spec(server.base_url)))
    assert posted["run"]["status"] == "completed", posted["run"]
    spawns = of_type(events, "hierarchy.spawn")
    assert [s["path"] for s in spawns] == ["board/engineering/helper_a", "board/engineering/helper_b",
                                           "board/engineering/helper_c"]
    assert "refused" not in spawns[0]
    assert spawns[1]["refused"] == "you already have 1 spawned reports, your max_children"
    assert spawns[2]["refused"] == "template 'analyst' is not one you may spawn (worker)"
    assert of_type(events, "hierarchy.terminate") == [{"path": "board/engineering/helper_a"}]
    engineering = next(r["result"] for r in of_type(events, "hierarchy.result") if r["path"] == "board/engineering")
    assert "refused: you already have 1 spawned reports" in engineering and "spawned did: do the job" in engineering


def test_a_spawned_agent_asking_for_a_model_its_parent_lacks_is_refused(base_url, model_server) -> None:
    server, script = model_server
    spec = with_prompts(tree_spec(server.base_url))
    spec["hierarchy"]["members"]["board"]["privileges"]["spawn"]["templates"] = ["worker", "analyst"]
    scripted(script, Org({"board": [call("spawn_agent", template="analyst", name="quant", instructions="x")]}))
    posted, events = run_tree(base_url, spec)
    assert posted["run"]["status"] == "completed", posted["run"]
    refused = of_type(events, "hierarchy.spawn")[0]["refused"]
    assert refused == "the spawned agent would exceed your privileges: models tiny are not among the parent's"


def test_a_child_that_would_overspend_is_stopped_with_a_named_reason(base_url, model_server) -> None:
    server, script = model_server
    spec = with_prompts(tree_spec(server.base_url))
    spec["hierarchy"]["members"]["research"]["privileges"]["max_tokens"] = 30
    scripted(script, Org({"board": [call("delegate", to="research", task="read everything " * 40)]}))
    posted, events = run_tree(base_url, spec)
    assert posted["run"]["status"] == "completed", posted["run"]
    result = of_type(events, "hierarchy.result")[0]
    assert result["path"] == "board/research" and result["spent"] > 30
    assert result["error"].startswith("board/research was stopped: it spent")
    assert "of its budget of 30" in result["error"]
    assert "stopped: board/research was stopped" in posted["reply"]["content"]


def test_a_run_killed_mid_delegation_resumes_with_the_same_tree(tmp_path: Path) -> None:
    script = ModelScript({"small-model": 0.3})
    with FakeOpenAIServer() as model:
        model.responder = script
        scripted(script, Org({
            "board": [call("spawn_agent", template="worker", name="scout", instructions="scout"),
                      call("delegate", to="research", task="find weather APIs"),
                      call("delegate", to="scout", task="scout the market")]}))
        spec = with_prompts(tree_spec(model.base_url))
        research_calls: list[int] = []

        def research_answered(base: str, run_id: str) -> bool:  # killed while the scout is on its way
            answered = bool(events_of(base, run_id, "hierarchy.result"))
            if answered:
                research_calls.append(sum(1 for r in model.chat_requests() if Org.agent_of(r) == "research"))
            return answered

        with killed_mid_run(tmp_path, spec, "Build a weather app", research_answered) as (second, session_id, run_id):
            done = wait_for(lambda: (r := httpx.get(f"{second.base_url}{API}/runs/{run_id}").json())["status"]
                            in ("completed", "failed") and r, timeout=60)
            assert done["status"] == "completed" and done["attempt"] == 2, done
            reply = httpx.get(f"{second.base_url}{API}/sessions/{session_id}/messages").json()["data"][0]
            tree = reply["metadata"]["hierarchy"]["tree"]
            assert [c["path"] for c in tree["children"]] == ["board/research", "board/engineering", "board/scout"]
            assert tree["children"][2]["spawned"] is True
            assert sum(1 for r in model.chat_requests() if Org.agent_of(r) == "research") == research_calls[-1]
            assert reply["content"] == "board reports: spawned 'scout' (template worker); delegate its job with " \
                                       "delegate(to='scout', task=...) | research did: find weather APIs | " \
                                       "spawned did: scout the market"
