"""Runs survive their server: SIGKILL or SIGTERM mid-run, start again, the run resumes and completes."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import message_events, wait_for
from tests.support.servers import children_of, launch_server, wait_ready

pytestmark = pytest.mark.e2e
MESSAGES = 8


def chat_spec(base_url: str) -> dict:
    return {
        "name": "two-talkers", "type": "autonomous",
        "models": {"default": {"provider": "openai", "model": "local-model", "base_url": base_url}},
        "agents": [{"name": "alice", "system_message": "You talk."}, {"name": "bob", "system_message": "You talk."}],
        "sender": "bob", "receiver": "alice",
        "termination": {"text": "TERMINATE", "max_messages": MESSAGES},
    }




@contextmanager
def interrupted_then_resumed(tmp_path: Path, model_url: str, *, stop_signal: signal.Signals,
                             checkpoint_interval_s: str, after_messages: int) -> Iterator[tuple[str, str, dict]]:
    """A chat run on a first server, stopped with `stop_signal` once `after_messages` of its messages are out;
    then a second server on the same database. Yields its base URL, the session id and the run once ended."""
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    first = wait_ready(launch_server(tmp_path / "first", database,
                                     AUTOBOTS_CHECKPOINT_INTERVAL_S=checkpoint_interval_s))
    base = first.base_url
    session = httpx.post(f"{base}/api/v1/sessions", json={"workflow": chat_spec(model_url)}).json()
    run_id = httpx.post(f"{base}/api/v1/sessions/{session['id']}/messages",
                        json={"content": "chat"}).json()["run"]["id"]
    wait_for(lambda: len(message_events(base, run_id)) >= after_messages)
    first.process.send_signal(stop_signal)
    first.process.wait(timeout=20)
    second = wait_ready(launch_server(tmp_path / "second", database))
    try:
        base = second.base_url
        run = wait_for(lambda: (r := httpx.get(f"{base}/api/v1/runs/{run_id}").json())["status"]
                       in ("completed", "incomplete", "failed", "cancelled") and r, timeout=60)
        yield base, session["id"], run
    finally:
        second.stop()


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM])
def test_a_run_interrupted_mid_way_resumes_and_completes(tmp_path: Path, stop_signal: signal.Signals) -> None:
    with FakeOpenAIServer(latency_ms=250, terminate_after=None) as model, interrupted_then_resumed(
            tmp_path, model.base_url, stop_signal=stop_signal, checkpoint_interval_s="0",
            after_messages=3) as (base, session_id, run):
        assert run["status"] == "incomplete", run  # the fake model never says TERMINATE: the message limit ends it
        assert run["attempt"] == 2
        assert run["stop_reason"] == f"Maximum number of messages {MESSAGES} reached"
        events = httpx.get(f"{base}/api/v1/runs/{run['id']}/events").json()
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        types = [e["type"] for e in events]
        assert types.count("run.started") == 2 and types[-2:] == ["run.incomplete", "done"]
        assert types.count("run.queued") == 2
        sources = [e["data"]["source"] for e in events if e["type"] == "message"]
        assert sources == ["alice", "bob"] * (MESSAGES // 2)
        reply = httpx.get(f"{base}/api/v1/sessions/{session_id}/messages?order=asc").json()["data"][-1]
        assert reply["role"] == "assistant" and len(reply["metadata"]["messages"]) == MESSAGES


def test_a_run_resumed_from_an_earlier_checkpoint_redoes_only_what_came_after_it(tmp_path: Path) -> None:
    """Checkpoints every 10 s: the one with the first message is the last. The resumed run produces messages
    2.. again; the stream shows the first attempt's, then the second's; the reply has each message once."""
    with FakeOpenAIServer(latency_ms=150, terminate_after=None) as model, interrupted_then_resumed(
            tmp_path, model.base_url, stop_signal=signal.SIGKILL, checkpoint_interval_s="10",
            after_messages=4) as (base, session_id, run):
        assert run["status"] == "incomplete" and run["attempt"] == 2, run
        events = httpx.get(f"{base}/api/v1/runs/{run['id']}/events").json()
        restart = [e["type"] for e in events].index("run.queued", 1)
        before = [e["data"]["source"] for e in events[:restart] if e["type"] == "message"]
        after = [e["data"]["source"] for e in events[restart:] if e["type"] == "message"]
        assert len(before) >= 4 and before == (["alice", "bob"] * MESSAGES)[:len(before)]
        assert after == (["alice", "bob"] * MESSAGES)[1:MESSAGES]  # the first message is not redone
        reply = httpx.get(f"{base}/api/v1/sessions/{session_id}/messages?order=asc").json()["data"][-1]
        transcript = reply["metadata"]["messages"]
        assert [m["source"] for m in transcript] == ["alice", "bob"] * (MESSAGES // 2)
        assert transcript[0] == next(e["data"] for e in events if e["type"] == "message")


def test_a_sequential_run_that_cannot_resume_fails_as_interrupted(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = {"name": "steps", "type": "sequential",
            "agents": [{"name": "one"}, {"name": "two"}, {"name": "three"}], "steps": ["one", "two", "three"]}
    with FakeOpenAIServer(latency_ms=600, terminate_after=1) as model:
        spec["models"] = {"default": {"provider": "openai", "model": "m", "base_url": model.base_url}}
        first = wait_ready(launch_server(tmp_path / "first", database))
        base = first.base_url
        session = httpx.post(f"{base}/api/v1/sessions", json={"workflow": spec}).json()
        run_id = httpx.post(f"{base}/api/v1/sessions/{session['id']}/messages",
                            json={"content": "go"}).json()["run"]["id"]
        wait_for(lambda: len(message_events(base, run_id)) >= 1)
        first.process.kill()
        first.process.wait(timeout=20)
        second = wait_ready(launch_server(tmp_path / "second", database))
        try:
            run = httpx.get(f"{second.base_url}/api/v1/runs/{run_id}").json()
            assert run["status"] == "failed"
            assert run["error"]["type"] == "interrupted"
            messages = httpx.get(f"{second.base_url}/api/v1/sessions/{session['id']}/messages").json()["data"]
            assert [m["content"] for m in messages] == ["go"]
        finally:
            second.stop()


def test_a_run_requeued_by_a_stranded_worker_after_a_new_server_started_still_completes(tmp_path: Path) -> None:
    """The first server is killed while its run worker is stopped, so the second server starts while the run
    still belongs to a live process. Resumed, the worker finds its server gone and requeues the run: after the
    second server's startup, which kicked what was queued then. The second server still executes it."""
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with FakeOpenAIServer(latency_ms=100, terminate_after=None) as model:
        first = wait_ready(launch_server(tmp_path / "first", database, AUTOBOTS_CHECKPOINT_INTERVAL_S="0"))
        session = httpx.post(f"{first.base_url}/api/v1/sessions", json={"workflow": chat_spec(model.base_url)}).json()
        run_id = httpx.post(f"{first.base_url}/api/v1/sessions/{session['id']}/messages",
                            json={"content": "chat"}).json()["run"]["id"]
        wait_for(lambda: len(message_events(first.base_url, run_id)) >= 2)
        workers = children_of(first.process.pid)
        assert workers

        def resume_workers() -> None:
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        first.process.kill()
        first.process.wait(timeout=20)
        # A worker stopped while holding the SQLite write lock would hold up the second server's start: resume
        # the workers after a while in any case.
        backstop = threading.Timer(8.0, resume_workers)
        backstop.start()
        second = launch_server(tmp_path / "second", database)
        try:
            wait_ready(second)
            backstop.cancel()
            resume_workers()
            run = wait_for(lambda: (r := httpx.get(f"{second.base_url}/api/v1/runs/{run_id}").json())["status"]
                           in ("completed", "incomplete", "failed", "cancelled") and r, timeout=60)
            assert (run["status"], run["attempt"]) == ("incomplete", 2), run
        finally:
            backstop.cancel()
            resume_workers()
            second.stop()
