"""The planner end to end: plan, route, execute, verify, learn, against an OpenAI-compatible server on loopback
that plays the planner, the worker models and the verifier by model name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from autobots.router import MIN_CONTEXT_PULLS

from tests.support.model_script import ModelScript
from tests.support.openai_server import FakeOpenAIServer, RecordedRequest
from tests.support.server_api import API
from tests.support.servers import launch_server, stop_and_check, wait_ready

pytestmark = pytest.mark.e2e

PLAN = {"subtasks": [
    {"id": "research", "kind": "research", "instruction": "Find the facts", "depends_on": []},
    {"id": "code", "kind": "code", "instruction": "Write the code", "depends_on": ["research"]},
    {"id": "prose", "kind": "write", "instruction": "Write the text", "depends_on": ["research"]},
    {"id": "check", "kind": "math", "instruction": "Check the numbers", "depends_on": ["code", "prose"]}]}


def spec(base_url: str, policy: str = "thompson") -> dict[str, Any]:
    def model(name: str, cents_per_1k: float) -> dict[str, Any]:
        return {"provider": "openai", "model": f"{name}-model", "base_url": base_url,
                "price": {"prompt_per_1k": cents_per_1k / 100, "completion_per_1k": cents_per_1k / 100}}

    return {"name": "planner", "type": "planner",
            "models": {"default": model("plan", 0.1), "small": model("small", 0.05), "large": model("large", 3.0),
                       "judge": model("judge", 0.05)},
            "planner": {"model": "default", "max_subtasks": 6, "max_replans": 2,
                        "kinds": ["research", "code", "write", "math"]},
            "workers": {"pool": ["small", "large"], "verifier": "judge"},
            "router": {"policy": policy, "explore": 0.0}}


def judge(request: RecordedRequest) -> str:
    """The small model fails at code; everything else succeeds."""
    prompt = request.last_user_text()
    failed = "Write the code" in prompt and "[small-model]" in prompt
    return json.dumps({"success": 0 if failed else 1})


@pytest.fixture
def planner_models(model_server: tuple[FakeOpenAIServer, ModelScript]) -> tuple[FakeOpenAIServer, ModelScript]:
    """The loopback model server playing the planner (PLAN) and the verifier (`judge`)."""
    server, script = model_server
    script.answers = {"plan-model": lambda request: json.dumps(PLAN) if "Decompose" in request.last_user_text()
                      else "The answer, from all parts.", "judge-model": judge}
    return server, script


def run_once(client: httpx.Client, session_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    posted = client.post(f"{API}/sessions/{session_id}/messages", params={"wait": "true"},
                         json={"content": "Build a tip calculator"}).json()
    events = client.get(f"{API}/runs/{posted['run']['id']}/events").json()
    return posted, events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e["type"] == kind]


def kind_rows(client: httpx.Client, workflow_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The router's statistics per (kind, model), all input sizes together."""
    rows = client.get(f"{API}/router", params={"workflow_id": workflow_id}).json()["data"]
    return {(r["kind"], r["model"]): r for r in rows if r["size"] is None}


def test_a_plan_runs_routed_verified_and_the_next_run_learns_from_it(base_url, planner_models) -> None:
    server, _ = planner_models
    with httpx.Client(base_url=base_url, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec(server.base_url)}).json()
        posted, events = run_once(client, session["id"])
        assert posted["run"]["status"] == "completed", posted["run"]
        assert of_type(events, "plan")[0]["subtasks"] == PLAN["subtasks"]
        choices = of_type(events, "router.choice")
        assert [c["subtask"] for c in choices] == ["research", "code", "prose", "check"]
        assert all(c["policy"] == "thompson" and c["pick"] in ("small", "large") for c in choices)
        steps = [s["id"] for s in posted["reply"]["metadata"]["steps"]]
        assert steps == ["research", "code", "prose", "check", "answer"]
        outcomes = of_type(events, "router.outcome")
        assert [o["subtask_id"] for o in outcomes] == ["research", "code", "prose", "check"]
        assert all(set(o) == {"subtask_id", "kind", "context", "model", "success", "cost_cents", "latency_s",
                              "reward"} for o in outcomes)
        stats = client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]}).json()["data"]
        assert sum(row["pulls"] for row in stats if row["size"] is None) == 4
        second, events2 = run_once(client, session["id"])
        assert second["run"]["status"] == "completed"
        first_picks = {c["subtask"]: c["pick"] for c in choices}
        for choice in of_type(events2, "router.choice"):  # the same sizes as the first run's: one pull each
            for model, estimate in choice["estimates"].items():
                tried = model == first_picks[choice["subtask"]]
                assert estimate["pulls"] == (MIN_CONTEXT_PULLS if tried else 0), (choice, stats)


def test_each_subtask_is_routed_when_ready_by_its_kind_and_input_size(base_url, planner_models) -> None:
    server, script = planner_models
    script.answers["small-model"] = lambda request: "done" if "Input from step" in request.last_user_text() \
        else "R" * 300  # the research sub-task, the only one without inputs, answers at length
    workflow = spec(server.base_url, policy="fixed")
    workflow["router"]["long_input_chars"] = 200
    with httpx.Client(base_url=base_url, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": workflow}).json()
        posted, events = run_once(client, session["id"])
        assert posted["run"]["status"] == "completed", posted["run"]
        rows = client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]}).json()["data"]
    choices = {c["subtask"]: c for c in of_type(events, "router.choice")}
    assert choices["research"]["features"] == {"kind": "research", "instruction_chars": len("Find the facts"),
                                               "dependencies": 0, "dependency_chars": 0}
    assert choices["research"]["context"] == "research/short"
    assert choices["code"]["features"]["dependencies"] == 1
    assert choices["code"]["features"]["dependency_chars"] == 300  # the research step's output, as it finished
    assert choices["code"]["context"] == "code/long"
    order = [(e["type"], e["data"].get("subtask") or e["data"].get("id")) for e in events
             if e["type"] in ("router.choice", "step.completed")]
    assert order.index(("step.completed", "research")) < order.index(("router.choice", "code"))
    sizes = {(r["kind"], r["size"]): r["pulls"] for r in rows}
    assert sizes[("code", "long")] == 1 and sizes[("code", None)] == 1 and sizes[("research", "short")] == 1
    assert not any(size == "long" for kind, size in sizes if kind == "research")


def test_the_middle_of_the_plan_runs_in_parallel(base_url, planner_models) -> None:
    server, script = planner_models
    script.delays = {"small-model": 0.4, "large-model": 0.4}
    with httpx.Client(base_url=base_url, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec(server.base_url, policy="cheapest")}).json()
        posted, _ = run_once(client, session["id"])
    assert posted["run"]["status"] == "completed", posted["run"]
    worker_calls = [c for c in script.calls if c[0] == "small-model"]
    middle = [c for c in worker_calls if c[3].count("Input from step") == 1]  # code and prose: research's output
    assert len(middle) == 2, worker_calls
    (a_start, a_end), (b_start, b_end) = [(c[1], c[2]) for c in middle]
    assert a_start < b_end and b_start < a_end, "the two branches did not overlap"


def test_feedback_overrides_the_verifier_in_the_statistics(base_url, planner_models) -> None:
    server, _ = planner_models
    with httpx.Client(base_url=base_url, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec(server.base_url, policy="fixed")}).json()
        posted, _ = run_once(client, session["id"])
        before = kind_rows(client, session["workflow_id"])
        assert before[("research", "small")]["success"] == 1.0
        answer = client.post(f"{API}/runs/{posted['run']['id']}/feedback",
                             json={"subtask_id": "research", "score": 0.0, "comment": "wrong facts"})
        assert answer.status_code == 200, answer.text
        assert answer.json()[0]["feedback"] == "wrong facts" and answer.json()[0]["success"] == 0.0
        after = kind_rows(client, session["workflow_id"])
        assert after[("research", "small")]["success"] == 0.0
        assert after[("research", "small")]["pulls"] == 1
        assert after[("research", "small")]["mean_reward"] < before[("research", "small")]["mean_reward"] - 9
        assert client.post(f"{API}/runs/{posted['run']['id']}/feedback",
                           json={"subtask_id": "nope", "score": 1}).status_code == 404
        assert client.delete(f"{API}/router", params={"workflow_id": session["workflow_id"]}).status_code == 204
        assert client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]}).json()["data"] == []
        forgotten = client.post(f"{API}/runs/{posted['run']['id']}/feedback", json={"score": 1})
        assert forgotten.status_code == 404 and forgotten.json()["error"]["code"] == "outcome_not_found"


def test_an_invalid_plan_is_asked_again_then_fails_the_run(base_url, planner_models) -> None:
    server, script = planner_models
    cyclic = {"subtasks": [{"id": "a", "kind": "code", "instruction": "x", "depends_on": ["b"]},
                           {"id": "b", "kind": "poetry", "instruction": "y", "depends_on": ["a"]}]}
    script.answers = {"plan-model": lambda request: json.dumps(cyclic)}
    with httpx.Client(base_url=base_url, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec(server.base_url)}).json()
        posted, events = run_once(client, session["id"])
    run = posted["run"]
    assert run["status"] == "failed" and run["error"]["type"] == "invalid_plan"
    invalid = of_type(events, "plan.invalid")
    assert [i["attempt"] for i in invalid] == [1, 2, 3]
    assert any("poetry" in error for error in invalid[0]["errors"])
    second_ask = [c for c in script.calls if c[0] == "plan-model"][1][3]
    assert second_ask.startswith("Your plan has these errors")


def test_statistics_survive_a_restart_and_belong_to_their_user(tmp_path: Path, planner_models) -> None:
    server, _ = planner_models
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = wait_ready(launch_server(tmp_path / "first", database))
    try:
        with httpx.Client(base_url=first.base_url, timeout=120) as client:
            session = client.post(f"{API}/sessions", json={"workflow": spec(server.base_url)}).json()
            assert run_once(client, session["id"])[0]["run"]["status"] == "completed"
            before = client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]}).json()
    finally:
        stop_and_check(first)
    second = wait_ready(launch_server(tmp_path / "second", database))
    try:
        with httpx.Client(base_url=second.base_url, timeout=30) as client:
            assert client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]}).json() == before
            other = client.get(f"{API}/router", params={"workflow_id": session["workflow_id"]},
                               headers={"X-User-Id": "mallory"})
            assert other.status_code == 404
    finally:
        stop_and_check(second)
