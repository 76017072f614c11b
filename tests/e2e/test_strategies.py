"""Strategies end to end: a real server runs a planner -> reviewer -> executor state machine against an
OpenAI-compatible server on loopback whose reviewer says what each test needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.model_script import ModelScript
from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API, events_of, run_to_end, wait_for
from tests.support.servers import killed_mid_run

pytestmark = pytest.mark.e2e

REJECT, APPROVE = '{"verdict": "REJECT"}', '{"verdict": "APPROVE"}'
VERDICT = {"type": "object", "required": ["verdict"], "properties": {"verdict": {"enum": ["APPROVE", "REJECT"]}}}


def planner_reviewer_executor(base_url: str, *, max_rejects: int = 3, max_steps: int = 30) -> dict[str, Any]:
    def model(name: str) -> dict[str, Any]:
        return {"provider": "openai", "model": f"{name}-model", "base_url": base_url}

    return {
        "name": "plan-review-execute", "type": "strategy",
        "models": {"default": model("planner"), "reviewer": model("reviewer"), "executor": model("executor")},
        "agents": [{"name": "planner", "system_message": "You write plans."},
                   {"name": "reviewer", "model": "reviewer"}, {"name": "executor", "model": "executor"}],
        "strategy": {
            "start": "planner", "max_steps": max_steps,
            "states": {
                "planner": {"next": [{"otherwise": True, "to": "reviewer"}]},
                "reviewer": {"max_errors": 2, "expect": {"format": "json", "schema": VERDICT},
                             "next": [{"when": {"counter": "rejects", "at_least": max_rejects}, "to": "executor"},
                                      {"when": {"json": "/verdict", "equals": "APPROVE"}, "to": "executor"},
                                      {"otherwise": True, "to": "planner"}]},
                "executor": {"instructions": "Carry the plan out.", "next": [{"otherwise": True, "to": "END"}]}},
            "counters": {"rejects": {"state": "reviewer", "when": {"json": "/verdict", "equals": "REJECT"}}}}}


def run_strategy(base: str, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return run_to_end(base, spec, "Plan a picnic")


def path_of(events: list[dict[str, Any]]) -> list[str]:
    moves = [e["data"] for e in events if e["type"] == "strategy.transition"]
    return [moves[0]["from"], *(m["to"] for m in moves)] if moves else []


def test_a_reviewer_rejecting_twice_then_approving_sends_the_plan_back_twice(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"reviewer-model": [REJECT, REJECT, APPROVE]}
    posted, events = run_strategy(base_url, planner_reviewer_executor(server.base_url))
    assert posted["run"]["status"] == "completed", posted["run"]
    assert path_of(events) == ["planner", "reviewer", "planner", "reviewer", "planner", "reviewer", "executor", "END"]
    moves = [e["data"] for e in events if e["type"] == "strategy.transition"]
    assert moves[-2]["rule"] == 'next[1]: {"equals": "APPROVE", "json": "/verdict"}'
    assert moves[-1]["counters"] == {"rejects": 2}
    assert posted["reply"]["content"].startswith("[executor-model] done with: Plan a picnic")
    assert posted["reply"]["metadata"]["strategy"]["path"] == path_of(events)[:-1]


def test_max_rejects_reached_goes_to_the_executor_anyway(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"reviewer-model": [REJECT, REJECT]}
    posted, events = run_strategy(base_url, planner_reviewer_executor(server.base_url, max_rejects=2))
    assert posted["run"]["status"] == "completed", posted["run"]
    assert path_of(events) == ["planner", "reviewer", "planner", "reviewer", "executor", "END"]
    assert [e["data"]["rule"] for e in events if e["type"] == "strategy.transition"][3] == \
        'next[0]: {"at_least": 2, "counter": "rejects"}'


def test_a_malformed_reply_is_reprompted_and_the_valid_one_proceeds(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"reviewer-model": ["Looks fine to me!", APPROVE]}
    posted, events = run_strategy(base_url, planner_reviewer_executor(server.base_url))
    assert posted["run"]["status"] == "completed", posted["run"]
    reprompts = [e["data"] for e in events if e["type"] == "strategy.reprompt"]
    assert len(reprompts) == 1 and reprompts[0]["state"] == "reviewer" and reprompts[0]["attempt"] == 1
    assert reprompts[0]["error"].startswith("it is not JSON")
    second_prompt = script.calls_of("reviewer-model")[1][3]
    assert "Looks fine to me!" in second_prompt and "It does not have the expected format: it is not JSON" in \
        second_prompt
    assert path_of(events) == ["planner", "reviewer", "executor", "END"]


def test_three_malformed_replies_fail_the_run_naming_the_state(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"reviewer-model": ["nope", '{"verdict": "MAYBE"}', "[]"]}
    posted, events = run_strategy(base_url, planner_reviewer_executor(server.base_url))
    run = posted["run"]
    assert run["status"] == "failed" and run["error"]["type"] == "strategy_format_error"
    assert run["error"]["message"].startswith("state 'reviewer': 3 replies did not match the expected format")
    assert [e["data"]["attempt"] for e in events if e["type"] == "strategy.reprompt"] == [1, 2]
    assert [e["data"]["source"] for e in events if e["type"] == "message"] == \
        ["planner", "reviewer", "reviewer", "reviewer"]
    reply = posted["reply"]
    assert [m["content"] for m in reply["metadata"]["messages"]][1:] == ["nope", '{"verdict": "MAYBE"}', "[]"]


def test_max_steps_ends_the_run_incomplete(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"reviewer-model": [REJECT] * 10}
    posted, events = run_strategy(base_url, planner_reviewer_executor(server.base_url, max_rejects=9, max_steps=5))
    assert posted["run"]["status"] == "incomplete"
    assert posted["run"]["incomplete_details"] == {"reason": "max_steps"}
    assert len(path_of(events)) == 6


def test_a_strategy_killed_mid_way_resumes_in_its_state_with_its_counters(tmp_path: Path) -> None:
    script = ModelScript({"reviewer-model": 0.2, "executor-model": 0.2})
    # By the reviews in the prompt, not by call order: a call the killed server made may be lost.
    script.answers = {
        "reviewer-model": lambda request: APPROVE if request.last_user_text().count("as reviewer]") >= 2 else REJECT,
        "planner-model": lambda request: "Plan: bring food."}  # no echo: reviews are counted above
    with FakeOpenAIServer() as model:
        model.responder = script
        spec = planner_reviewer_executor(model.base_url, max_rejects=3)
        # planner -> reviewer -> planner -> reviewer: killed during the second review
        with killed_mid_run(tmp_path, spec, "Plan a picnic", lambda base, run_id: len(
                events_of(base, run_id, "strategy.transition")) >= 3) as (second, session_id, run_id):
            done = wait_for(lambda: (r := httpx.get(f"{second.base_url}{API}/runs/{run_id}").json())["status"]
                            in ("completed", "failed", "incomplete") and r, timeout=60)
            assert done["status"] == "completed" and done["attempt"] == 2, done
            moves = events_of(second.base_url, run_id, "strategy.transition")
            assert [m["to"] for m in moves][-2:] == ["executor", "END"]
            assert moves[-1]["counters"] == {"rejects": 2}, [(m["from"], m["to"], m["counters"]) for m in moves]
            reply = httpx.get(f"{second.base_url}{API}/sessions/{session_id}/messages").json()["data"][0]
            assert reply["metadata"]["strategy"]["path"] == \
                ["planner", "reviewer", "planner", "reviewer", "planner", "reviewer", "executor"]
