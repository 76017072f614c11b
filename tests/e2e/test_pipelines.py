"""Pipelines end to end: a real server runs DAGs of steps against an OpenAI-compatible server on loopback whose
answers, delays and failures depend on the model each step asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.model_script import ModelScript
from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API, events_of, wait_for
from tests.support.servers import killed_mid_run

pytestmark = pytest.mark.e2e


def models(base_url: str, *names: str) -> dict[str, Any]:
    return {name: {"provider": "openai", "model": f"{name}-model", "base_url": base_url} for name in names}


def diamond(base_url: str) -> dict[str, Any]:
    return {
        "name": "diamond", "type": "pipeline", "models": models(base_url, "a", "b", "c", "d"),
        "pipeline": {"steps": [
            {"id": "plan", "module": "planner", "inputs": ["task"], "model": "a"},
            {"id": "left", "module": "scrutinizer", "inputs": ["plan"], "model": "b"},
            {"id": "right", "module": "code_planner", "inputs": ["plan"], "model": "c",
             "supplement": "Python only."},
            {"id": "join", "module": "enhancer", "inputs": ["left", "right"], "model": "d"}],
            "output": "join", "max_parallel": 4}}


def post_and_wait(base: str, spec: dict[str, Any], content: str = "Build a calculator") -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=120) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec})
        assert session.status_code == 201, session.text
        posted = client.post(f"{API}/sessions/{session.json()['id']}/messages", params={"wait": "true"},
                             json={"content": content})
        assert posted.status_code == 200, posted.text
        return posted.json()  # type: ignore[no-any-return]


def test_a_diamond_runs_its_middle_steps_at_once_each_on_its_own_model(base_url, model_server) -> None:
    server, script = model_server
    script.delays = {"b-model": 0.6, "c-model": 0.6}
    posted = post_and_wait(base_url, diamond(server.base_url))
    assert posted["run"]["status"] == "completed", posted["run"]
    (_, b_start, b_end, _), = script.calls_of("b-model")
    (_, c_start, c_end, _), = script.calls_of("c-model")
    assert b_start < c_end and c_start < b_end, "left and right did not run at the same time"
    (_, d_start, _, d_prompt), = script.calls_of("d-model")
    assert d_start >= max(b_end, c_end)
    assert "Input from step 'left':\n[b-model] done with:" in d_prompt
    assert "Input from step 'right':\n[c-model] done with:" in d_prompt
    (_, _, _, c_prompt), = script.calls_of("c-model")
    assert c_prompt.startswith("Build a calculator") and c_prompt.endswith("Python only.")
    assert posted["reply"]["content"].startswith("[d-model] done with: Build a calculator")
    steps = posted["reply"]["metadata"]["steps"]
    assert [(s["id"], s["model"], s["status"]) for s in steps] == [
        ("plan", "a", "completed"), ("left", "b", "completed"), ("right", "c", "completed"), ("join", "d", "completed")]
    assert all(s["usage"]["total_tokens"] > 0 and s["seconds"] >= 0 for s in steps)
    assert {r.model for r in server.chat_requests()} == {"a-model", "b-model", "c-model", "d-model"}
    events = httpx.get(f"{base_url}{API}/runs/{posted['run']['id']}/events").json()
    kinds = [(e["type"], e["data"].get("id")) for e in events if e["type"].startswith("step.")]
    assert kinds.index(("step.completed", "plan")) < kinds.index(("step.started", "left"))
    assert kinds.index(("step.started", "right")) < kinds.index(("step.completed", "left"))
    assert kinds[-1] == ("step.completed", "join")


def test_a_failing_step_fails_the_run_naming_it_and_keeps_the_finished_steps(base_url, model_server) -> None:
    server, _ = model_server
    spec = {"name": "breaks", "type": "pipeline",
            "models": {**models(server.base_url, "a"),
                       "dead": {"provider": "openai", "model": "x", "base_url": "http://127.0.0.1:9/v1"}},
            "pipeline": {"steps": [{"id": "first", "module": "planner", "model": "a"},
                                   {"id": "second", "module": "enhancer", "inputs": ["first"], "model": "dead"}],
                         "output": "second"}}
    posted = post_and_wait(base_url, spec)
    run = posted["run"]
    assert run["status"] == "failed"
    assert run["error"]["step"] == "second" and run["error"]["type"] == "model_connection_error"
    events = httpx.get(f"{base_url}{API}/runs/{run['id']}/events").json()
    completed = [e["data"] for e in events if e["type"] == "step.completed"]
    assert [c["id"] for c in completed] == ["first"] and completed[0]["output"].startswith("[a-model]")
    failed = [e["data"] for e in events if e["type"] == "step.failed"]
    assert failed == [{"id": "second", "error": run["error"]}]


def test_cancel_stops_every_running_step(base_url, model_server) -> None:
    server, script = model_server
    script.delays = {"b-model": 30, "c-model": 30}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        session = client.post(f"{API}/sessions", json={"workflow": diamond(server.base_url)}).json()
        run = client.post(f"{API}/sessions/{session['id']}/messages", json={"content": "go"}).json()["run"]
        wait_for(lambda: len(script.calls_of("a-model")) == 1 and len(server.chat_requests()) >= 3, timeout=30)
        steps = wait_for(lambda: (s := client.get(f"{API}/runs/{run['id']}").json()["steps"]) and len(s) == 3 and s)
        assert steps == [{"id": "plan", "status": "completed", "model": "a"},
                         {"id": "left", "status": "running", "model": "b"},
                         {"id": "right", "status": "running", "model": "c"}]
        assert client.post(f"{API}/runs/{run['id']}/cancel").status_code == 200
        done = wait_for(lambda: (r := client.get(f"{API}/runs/{run['id']}").json())["status"] == "cancelled" and r,
                        timeout=10)
    assert done["status"] == "cancelled"
    assert script.calls_of("d-model") == []


def test_a_code_step_debugs_itself_until_its_code_runs(base_url, model_server) -> None:
    server, script = model_server
    script.replies = {"a-model": ["```python\nprint(1/0)\n```", "```python\nprint(12*(3+4))\n```"]}
    spec = {"name": "coder", "type": "pipeline", "models": models(server.base_url, "a"),
            "agents": [{"name": "coder", "system_message": "You write python.", "model": "a"}],
            "pipeline": {"steps": [{"id": "code", "agent": "coder", "execute": {"max_attempts": 3, "timeout_s": 20}}],
                         "output": "code"}}
    posted = post_and_wait(base_url, spec, "What is 12*(3+4)?")
    assert posted["run"]["status"] == "completed", posted["run"]
    step, = posted["reply"]["metadata"]["steps"]
    assert step["attempts"] == 2 and step["code"] == "print(12*(3+4))\n" and step["execution_output"] == "84\n"
    executions = posted["reply"]["metadata"]["code_executions"]
    assert [e["exit_code"] for e in executions] == [1, 0]
    assert "ZeroDivisionError" in executions[0]["output"]
    second_prompt = script.calls_of("a-model")[1][3]
    assert "exit code 1" in second_prompt and "ZeroDivisionError" in second_prompt


def test_a_pipeline_killed_between_steps_resumes_without_redoing_finished_steps(tmp_path: Path) -> None:
    script = ModelScript({"b-model": 3.0})
    with FakeOpenAIServer() as model:
        model.responder = script
        spec = {"name": "two", "type": "pipeline", "models": models(model.base_url, "a", "b"),
                "pipeline": {"steps": [{"id": "first", "module": "planner", "model": "a"},
                                       {"id": "second", "module": "enhancer", "inputs": ["first"], "model": "b"}],
                             "output": "second"}}
        # killed once the first step is on disk, while the second waits for its model
        with killed_mid_run(tmp_path, spec, "go", lambda base, run_id: bool(
                events_of(base, run_id, "step.completed"))) as (second, _, run_id):
            done = wait_for(lambda: (r := httpx.get(f"{second.base_url}{API}/runs/{run_id}").json())["status"]
                            in ("completed", "failed") and r, timeout=60)
            assert done["status"] == "completed" and done["attempt"] == 2, done
            assert len(script.calls_of("a-model")) == 1, "the finished step ran again"
            assert [e["id"] for e in events_of(second.base_url, run_id, "step.completed")] == ["first", "second"]
