"""Runs in worker processes: a real server (`run_workers = 2`), its workers, and what the API sees of them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from autobots.db import migrate_to_head

from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import message_events, wait_for
from tests.support.servers import ServerProcess, children_of, launch_server, stop_and_check, wait_ready

pytestmark = pytest.mark.e2e
TERMINAL = ("completed", "incomplete", "failed", "cancelled")


def chat_spec(base_url: str, messages: int, **model: str) -> dict:
    return {
        "name": "two-talkers", "type": "autonomous",
        "models": {"default": {"provider": "openai", "model": "local-model", "base_url": base_url, **model}},
        "agents": [{"name": "alice", "system_message": "You talk."}, {"name": "bob", "system_message": "You talk."}],
        "sender": "bob", "receiver": "alice",
        "termination": {"max_messages": messages},
    }


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()



@pytest.fixture
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_ms=100, terminate_after=None) as server:
        yield server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Two workers; every agent message checkpointed, so a resumed run redoes none (see tests/e2e/test_recovery
    for coarser checkpoints)."""
    started = wait_ready(launch_server(tmp_path / "server", f"sqlite:///{tmp_path / 'db.sqlite'}",
                                       AUTOBOTS_RUN_WORKERS="2", AUTOBOTS_CHECKPOINT_INTERVAL_S="0"))
    try:
        yield started
    finally:
        started.stop()


def start_run(base: str, spec: dict, content: str = "chat") -> tuple[str, str]:
    session = httpx.post(f"{base}/api/v1/sessions", json={"workflow": spec}).json()
    posted = httpx.post(f"{base}/api/v1/sessions/{session['id']}/messages", json={"content": content})
    assert posted.status_code == 202, posted.text
    return session["id"], posted.json()["run"]["id"]



def test_the_server_starts_the_configured_number_of_workers(server: ServerProcess) -> None:
    assert len(wait_for(lambda: len(children_of(server.process.pid)) == 2 and children_of(server.process.pid))) == 2
    assert "runs execute in 2 worker process(es)" in server.log()


def test_readiness_reports_the_connected_workers(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["runs"] == {
        "ok": True, "executor": "workers", "workers": 2, "connected": 2, "live_runs": 0,
        "by_worker": [{"live_runs": 0, "sessions": 0}, {"live_runs": 0, "sessions": 0}]}


def runs_by_worker(base: str) -> list[dict]:
    return httpx.get(f"{base}/readyz").json()["checks"]["runs"]["by_worker"]


def test_runs_started_at_once_are_spread_evenly_over_the_workers(server: ServerProcess,
                                                                 model: FakeOpenAIServer) -> None:
    base = server.base_url
    runs = [start_run(base, chat_spec(model.base_url, 40))[1] for _ in range(8)]

    def all_live() -> list[dict] | None:
        by_worker = runs_by_worker(base)
        return by_worker if sum(w["live_runs"] for w in by_worker) == 8 else None

    spread = wait_for(all_live)
    assert [w["live_runs"] for w in spread] == [4, 4]
    assert [w["sessions"] for w in spread] == [4, 4]
    for run_id in runs:
        httpx.post(f"{base}/api/v1/runs/{run_id}/cancel")


def test_a_session_is_free_to_go_to_any_worker_once_its_runs_are_done(server: ServerProcess,
                                                                      model: FakeOpenAIServer) -> None:
    base = server.base_url
    session = httpx.post(f"{base}/api/v1/sessions", json={"workflow": chat_spec(model.base_url, 2)}).json()
    for round_ in range(2):
        posted = httpx.post(f"{base}/api/v1/sessions/{session['id']}/messages", params={"wait": "true"},
                            json={"content": f"round {round_}"}, timeout=30)
        assert posted.json()["run"]["status"] == "incomplete"  # the message limit ends these runs
        assert wait_for(lambda: all(w == {"live_runs": 0, "sessions": 0} for w in runs_by_worker(base)))


def test_a_run_streams_every_event_in_order_from_a_worker(server: ServerProcess, model: FakeOpenAIServer) -> None:
    session = httpx.post(f"{server.base_url}/api/v1/sessions", json={"workflow": chat_spec(model.base_url, 4)}).json()
    with httpx.stream("POST", f"{server.base_url}/api/v1/sessions/{session['id']}/messages",
                      json={"content": "chat"}, headers={"accept": "text/event-stream"}, timeout=30) as response:
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events] == ["run.queued", "run.started", *["message"] * 4, "run.incomplete", "done"]


def test_a_follower_joining_a_live_run_midway_gets_every_event_once_in_order(server: ServerProcess,
                                                                             model: FakeOpenAIServer) -> None:
    base = server.base_url
    _, run_id = start_run(base, chat_spec(model.base_url, 12))
    wait_for(lambda: len(message_events(base, run_id)) >= 3)
    with httpx.stream("GET", f"{base}/api/v1/runs/{run_id}/events", headers={"accept": "text/event-stream"},
                      timeout=30) as response:
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert [e["type"] for e in events] == ["run.queued", "run.started", *["message"] * 12, "run.incomplete", "done"]


def test_the_reply_is_readable_as_soon_as_a_waited_run_returns(server: ServerProcess,
                                                              model: FakeOpenAIServer) -> None:
    base = server.base_url
    session = httpx.post(f"{base}/api/v1/sessions", json={"workflow": chat_spec(model.base_url, 2)}).json()
    for round_ in range(3):
        before = httpx.get(f"{base}/api/v1/sessions/{session['id']}/messages").json()["data"]  # fills the cache
        assert len(before) == 2 * round_
        posted = httpx.post(f"{base}/api/v1/sessions/{session['id']}/messages", params={"wait": "true"},
                            json={"content": f"round {round_}"}, timeout=30).json()
        after = httpx.get(f"{base}/api/v1/sessions/{session['id']}/messages").json()["data"]
        assert after[0]["id"] == posted["run"]["reply_message_id"]
        assert len(after) == 2 * round_ + 2


def test_a_live_run_in_a_worker_can_be_cancelled(server: ServerProcess, model: FakeOpenAIServer) -> None:
    base = server.base_url
    _, run_id = start_run(base, chat_spec(model.base_url, 40))
    wait_for(lambda: len(message_events(base, run_id)) >= 1)
    cancelled = httpx.post(f"{base}/api/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    run = wait_for(lambda: (r := httpx.get(f"{base}/api/v1/runs/{run_id}").json())["status"] in TERMINAL and r)
    assert run["status"] == "cancelled"


def test_an_inline_api_key_reaches_the_worker_but_no_response(server: ServerProcess,
                                                              model: FakeOpenAIServer) -> None:
    spec = chat_spec(model.base_url, 2, api_key="sk-inline-secret-123")
    session_id, run_id = start_run(server.base_url, spec)
    run = wait_for(lambda: (r := httpx.get(f"{server.base_url}/api/v1/runs/{run_id}").json())["status"]
                   in TERMINAL and r)
    assert run["status"] == "incomplete", run
    requests = model.chat_requests()
    assert requests and all(r.authorization == "Bearer sk-inline-secret-123" for r in requests)
    assert "sk-inline-secret-123" not in httpx.get(f"{server.base_url}/api/v1/sessions/{session_id}").text
    assert "sk-inline-secret-123" not in server.log()


def test_a_killed_worker_is_replaced_and_its_run_resumes(server: ServerProcess, model: FakeOpenAIServer) -> None:
    base = server.base_url
    workers = wait_for(lambda: len(children_of(server.process.pid)) == 2 and children_of(server.process.pid))
    _, run_id = start_run(base, chat_spec(model.base_url, 8))
    wait_for(lambda: len(message_events(base, run_id)) >= 2)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    run = wait_for(lambda: (r := httpx.get(f"{base}/api/v1/runs/{run_id}").json())["status"] in TERMINAL and r,
                   timeout=60)
    assert run["status"] == "incomplete", run
    assert run["attempt"] == 2
    sources = [e["data"]["source"] for e in message_events(base, run_id)]
    assert sources == ["alice", "bob"] * 4
    replacements = children_of(server.process.pid)
    assert len(replacements) == 2 and not set(replacements) & set(workers)


def test_a_worker_that_stops_on_its_own_settles_its_run_and_is_replaced_at_once(server: ServerProcess,
                                                                              model: FakeOpenAIServer) -> None:
    """SIGTERM to the workers (an operator, a supervisor signalling the process group): each requeues its runs
    and says `Stopped` before it exits, so the pool replaces it without counting a crash, and the run resumes."""
    base = server.base_url
    workers = wait_for(lambda: len(children_of(server.process.pid)) == 2 and children_of(server.process.pid))
    _, run_id = start_run(base, chat_spec(model.base_url, 8))
    wait_for(lambda: len(message_events(base, run_id)) >= 2)
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    run = wait_for(lambda: (r := httpx.get(f"{base}/api/v1/runs/{run_id}").json())["status"] in TERMINAL and r,
                   timeout=60)
    assert (run["status"], run["attempt"]) == ("incomplete", 2), run
    assert [e["data"]["source"] for e in message_events(base, run_id)] == ["alice", "bob"] * 4
    log = server.log()
    assert log.count("stopped (status 0) and settled its runs; starting a new one") == 2, log[-4000:]
    assert "exited unexpectedly" not in log
    replacements = wait_for(lambda: len(children_of(server.process.pid)) == 2 and children_of(server.process.pid))
    assert not set(replacements) & set(workers)


def test_stopping_the_server_stops_its_workers(tmp_path: Path) -> None:
    server = wait_ready(launch_server(tmp_path / "server", f"sqlite:///{tmp_path / 'db.sqlite'}",
                                      AUTOBOTS_RUN_WORKERS="2"))
    workers = wait_for(lambda: len(children_of(server.process.pid)) == 2 and children_of(server.process.pid))
    stop_and_check(server)
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)


def test_a_started_writer_thread_keeps_its_priority_when_the_process_is_niced(tmp_path: Path) -> None:
    """What a worker does before nicing itself: its database writer thread (which holds the write lock other
    processes wait for) keeps the normal priority; threads made later, like the readers, are niced."""
    script = f"""
import asyncio, os
from autobots.db import Database

async def main():
    db = Database("sqlite:///{tmp_path / 'db.sqlite'}")
    await db.start_writer_thread()
    os.nice(5)
    own = lambda connection: os.getpriority(os.PRIO_PROCESS, 0)  # Linux: the calling thread's nice value
    print(await db.write_in_thread(own), await db.read_in_thread(own))
    await db.dispose()

asyncio.run(main())
"""
    migrate_to_head(f"sqlite:///{tmp_path / 'db.sqlite'}")
    base = os.getpriority(os.PRIO_PROCESS, 0)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == [str(base), str(base + 5)]
