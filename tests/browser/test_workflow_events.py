"""Each workflow type's own events show in the live transcript as they happen (all offline, on the scripted model)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.pages import Shots, api_session, go_to, open_page, run_status, send, transcript
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e

PLANNER: dict[str, Any] = {
    "name": "planned", "type": "planner",
    "models": {name: {"provider": "scripted", "model": name} for name in ("default", "small", "large")},
    "planner": {"model": "default", "max_subtasks": 6, "kinds": ["research", "code", "write", "math"]},
    "workers": {"pool": ["small", "large"], "verifier": "small"},
    "router": {"policy": "thompson"},
}


def start_from_example(page: Page, server: ServerProcess, example: str, *, name: str) -> None:
    """A new session from one of the editor's examples."""
    open_page(page, server)
    go_to(page, "New session")
    page.get_by_label("Start from").select_option(label=example)
    page.get_by_label("Session name").fill(name)
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def events(page: Page, pattern: str) -> Locator:
    return transcript(page).get_by_role("listitem").filter(has_text=re.compile(pattern))


def test_pipeline_steps_appear_as_they_happen(page: Page, local_server: ServerProcess, shots: Shots):
    start_from_example(page, local_server, "Draft, critique, final (pipeline, JSON)", name="pipeline")
    send(page, "Explain why tests matter")
    expect(run_status(page)).to_contain_text("completed")
    expect(events(page, r"^Step ")).to_have_text([re.compile(p) for p in (
        r"^Step draft started", r"^Step draft completed", r"^Step critique started", r"^Step critique completed",
        r"^Step final started", r"^Step final completed")])
    shots(page, "pipeline-steps")


def test_strategy_transitions_appear_as_they_happen(page: Page, local_server: ServerProcess, shots: Shots):
    start_from_example(page, local_server, "Plan, review, execute (strategy, YAML)", name="strategy")
    send(page, "Plan a picnic")
    expect(run_status(page)).to_contain_text("completed")
    expect(events(page, r"^Strategy: ")).to_have_text([
        re.compile(r"^Strategy: planner → reviewer"), re.compile(r"^Strategy: reviewer → executor"),
        re.compile(r"^Strategy: executor → END")])
    shots(page, "strategy-transitions")


def test_hierarchy_delegations_appear_as_they_happen(page: Page, local_server: ServerProcess, shots: Shots):
    start_from_example(page, local_server, "A company (hierarchy, YAML)", name="hierarchy")
    send(page, "Ship a product")
    expect(run_status(page)).to_contain_text("completed")
    expect(events(page, r"^Delegation board → board/research")).to_have_count(1)
    expect(events(page, r"^Result from board/research")).to_have_count(1)
    expect(events(page, r"^Spawn board/")).to_have_count(1)
    shots(page, "hierarchy-delegations")


def test_a_plan_and_the_router_s_choices_appear_as_they_happen(page: Page, local_server: ServerProcess,
                                                              shots: Shots):
    session_id = api_session(local_server, PLANNER, name="planner")
    open_page(page, local_server, f"#sessions/{session_id}")
    send(page, "Build a tiny calculator")
    expect(run_status(page)).to_contain_text("completed")
    expect(events(page, r"^Plan \(attempt 1\)")).to_have_count(1)
    expect(events(page, r"^Router: sub-task ")).not_to_have_count(0)
    expect(events(page, r"^Outcome of sub-task ")).not_to_have_count(0)
    shots(page, "plan-and-router")
