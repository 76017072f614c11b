"""Creating a session from a spec, sending a message and watching its run live over Server-Sent Events."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.browser.pages import (
    CODER_YAML,
    Shots,
    api_session,
    create_session,
    open_page,
    run_status,
    send,
    sign_in,
    transcript,
    write_spec,
)
from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.e2e


def two_voices(fake_openai: FakeOpenAIServer) -> dict[str, Any]:
    """Two assistants on the fake OpenAI server, which answers as slowly as it is told to."""
    return {"name": "two-voices", "type": "autonomous",
            "models": {"default": {"provider": "openai", "model": "gpt-4o-mini", "base_url": fake_openai.base_url}},
            "agents": [{"name": "writer", "kind": "assistant"}, {"name": "critic", "kind": "assistant"}],
            "sender": "writer", "receiver": "critic", "termination": {"text": "TERMINATE", "max_messages": 10}}


def test_a_session_is_created_from_a_yaml_spec(page: Page, apikey_server: ServerProcess,
                                               api_keys: dict[str, str], shots: Shots):
    open_page(page, apikey_server)
    sign_in(page, api_keys["alice"])
    write_spec(page, CODER_YAML, name="yaml coder")
    shots(page, "spec-written")
    page.get_by_role("button", name="Create session").click()
    expect(page.get_by_role("heading", name="yaml coder")).to_be_visible()
    expect(page.get_by_role("list", name="Your sessions")).to_contain_text("yaml coder")
    session_id = page.url.rsplit("/", 1)[-1]
    shots(page, "session-created")
    stored = httpx.get(f"{apikey_server.base_url}{API}/sessions/{session_id}",
                       headers={"Authorization": f"Bearer {api_keys['alice']}"})
    assert stored.status_code == 200 and stored.json()["workflow_id"]


def test_a_spec_s_problems_are_shown_at_their_paths(page: Page, local_server: ServerProcess, shots: Shots):
    spec = {"name": "broken", "type": "autonomous",
            "agents": [{"name": "coder"}, {"name": "proxy", "kind": "robot"}],
            "sender": "proxy", "receiver": "coder", "summary_method": "sometimes"}
    open_page(page, local_server)
    write_spec(page, json.dumps(spec, indent=2), name="broken", format="JSON")
    page.get_by_role("button", name="Create session").click()
    problems = page.get_by_role("alert").filter(has_text="The spec has")
    expect(problems).to_be_visible()
    expect(problems.get_by_role("button", name="agents[1].kind")).to_be_visible()
    expect(problems.get_by_role("button", name="summary_method")).to_be_visible()
    problems.get_by_role("button", name="agents[1].kind").click()
    editor = page.get_by_label("Workflow spec")
    expect(editor).to_be_focused()
    selected = editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
    assert selected == '"kind":'
    shots(page, "problems-at-their-paths")


def test_a_yaml_syntax_error_names_its_line(page: Page, local_server: ServerProcess, shots: Shots):
    open_page(page, local_server)
    write_spec(page, "name: broken\ntype: [autonomous\nagents: []\n", name="broken yaml")
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_role("alert").filter(has_text="The spec was refused")).to_contain_text("not valid YAML")
    shots(page, "yaml-syntax-error")


def test_the_reply_streams_in_while_the_run_is_running(page: Page, local_server: ServerProcess,
                                                       fake_openai: FakeOpenAIServer, shots: Shots):
    fake_openai.latency_ms = 1000
    fake_openai.queue_replies("A first draft.", "A sharper second draft.", "The final text. TERMINATE")
    session_id = api_session(local_server, two_voices(fake_openai), name="streaming")
    open_page(page, local_server, f"#sessions/{session_id}")
    send(page, "Write a line about the sea")
    expect(transcript(page)).to_contain_text("A first draft.")
    shots(page, "first-message-arrived")
    expect(run_status(page)).to_contain_text("running")
    expect(transcript(page)).not_to_contain_text("The final text.")
    expect(run_status(page)).to_contain_text("completed", timeout=30_000)
    expect(transcript(page)).to_contain_text("The final text.")
    shots(page, "run-completed")


def test_a_code_execution_shows_its_code_output_and_exit_code(page: Page, apikey_server: ServerProcess,
                                                              api_keys: dict[str, str], shots: Shots):
    open_page(page, apikey_server)
    sign_in(page, api_keys["alice"])
    create_session(page, CODER_YAML, name="live coder")
    shots(page, "session-created")
    send(page, "What is 12*(3+4)?")
    execution = transcript(page).get_by_role("listitem").filter(has_text="exit code")
    expect(execution).to_contain_text("user_proxy ran python")
    expect(execution).to_contain_text("exit code 0")
    expect(execution.locator("figure").filter(has_text="code").locator("pre")).to_have_text("print(12*(3+4))")
    expect(execution.locator("figure").filter(has_text="output").locator("pre")).to_have_text("84")
    expect(run_status(page)).to_contain_text("completed")
    expect(transcript(page)).to_contain_text("The result is: 84")
    shots(page, "live-run")


def test_a_finished_run_shows_its_tokens_and_cost(page: Page, local_server: ServerProcess, shots: Shots):
    session_id = api_session(local_server, CODER_YAML, name="priced")
    open_page(page, local_server, f"#sessions/{session_id}")
    send(page, "What is 6*7?")
    expect(run_status(page)).to_contain_text("completed")
    usage = page.locator("#run-usage")
    expect(usage).to_have_text(re.compile(r"^\d+ tokens \(\d+ prompt, \d+ completion\) · cost \$0\.\d+$"))
    run_id = run_status(page).inner_text().split()[1].rstrip(":")
    run = httpx.get(f"{local_server.base_url}{API}/runs/{run_id}").json()
    assert f"{run['usage']['total_tokens']} tokens" in usage.inner_text()
    assert run["cost"] > 0
    shots(page, "tokens-and-cost")


def test_a_dropped_event_stream_resumes_with_last_event_id(page: Page, local_server: ServerProcess, shots: Shots):
    """The message POST's stream is cut after three events; the page reconnects to the run's event stream with
    `Last-Event-ID: 3` and shows every event once."""

    def cut_after_three_events(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        response = route.fetch()
        frames = [frame for frame in response.text().split("\n\n") if frame.startswith("id:")]
        route.fulfill(response=response, body="\n\n".join(frames[:3]) + "\n\n")

    resumed_from: list[str | None] = []
    page.on("request", lambda request: resumed_from.append(request.headers.get("last-event-id"))
            if re.search(r"/api/v1/runs/[^/]+/events$", request.url) else None)
    session_id = api_session(local_server, CODER_YAML, name="dropped")
    page.route(re.compile(r".*/api/v1/sessions/[^/]+/messages$"), cut_after_three_events)
    open_page(page, local_server, f"#sessions/{session_id}")
    send(page, "What is 2*(3+4)?")
    expect(run_status(page)).to_contain_text("completed")
    assert resumed_from == ["3"]
    seqs = transcript(page).locator("[data-seq]").evaluate_all("nodes => nodes.map(n => Number(n.dataset.seq))")
    assert seqs == sorted(set(seqs))
    expect(transcript(page).get_by_role("listitem").filter(has_text="exit code 0")).to_have_count(1)
    shots(page, "resumed")


def test_a_running_run_can_be_cancelled(page: Page, local_server: ServerProcess, fake_openai: FakeOpenAIServer,
                                        shots: Shots):
    fake_openai.latency_ms = 10_000
    session_id = api_session(local_server, two_voices(fake_openai), name="to cancel")
    open_page(page, local_server, f"#sessions/{session_id}")
    send(page, "Take your time")
    expect(run_status(page)).to_contain_text("running")
    page.get_by_role("button", name="Cancel run").click()
    expect(run_status(page)).to_contain_text("cancelled")
    expect(transcript(page)).to_contain_text("Run cancelled")
    shots(page, "cancelled")


def test_opening_a_session_shows_its_history(page: Page, local_server: ServerProcess, shots: Shots):
    session_id = api_session(local_server, CODER_YAML, name="with history")
    posted = httpx.post(f"{local_server.base_url}{API}/sessions/{session_id}/messages", params={"wait": "true"},
                        json={"content": "What is 3*(4+5)?"}, timeout=60)
    assert posted.status_code == 200, posted.text
    open_page(page, local_server)
    page.get_by_role("link", name=re.compile("with history")).click()
    history = page.get_by_role("list", name="History")
    expect(history.get_by_role("listitem").first).to_contain_text("What is 3*(4+5)?")
    reply = history.get_by_role("listitem").filter(has_text="The result is: 27").first
    reply.get_by_text("Code runs (1)").click()
    expect(reply).to_contain_text("exit code 0")
    shots(page, "history")


def test_opening_a_session_whose_run_is_going_follows_the_run(page: Page, local_server: ServerProcess,
                                                              fake_openai: FakeOpenAIServer, shots: Shots):
    fake_openai.latency_ms = 1000
    fake_openai.queue_replies("Started elsewhere.", "Finished here. TERMINATE")
    session_id = api_session(local_server, two_voices(fake_openai), name="started elsewhere")
    posted = httpx.post(f"{local_server.base_url}{API}/sessions/{session_id}/messages", json={"content": "Go"})
    assert posted.status_code == 202, posted.text
    open_page(page, local_server, f"#sessions/{session_id}")
    expect(run_status(page)).to_contain_text(posted.json()["run"]["id"])
    expect(run_status(page)).to_contain_text("completed")
    expect(transcript(page)).to_contain_text("Started elsewhere.")
    expect(transcript(page)).to_contain_text("Finished here.")
    shots(page, "followed")
