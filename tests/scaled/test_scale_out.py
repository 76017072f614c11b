"""Scale-out: 2 API replicas and 2 run workers, real processes on loopback, dispatching through the local
PostgreSQL (`run_dispatch = "procrastinate"`); the model is an OpenAI-compatible server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cluster import Cluster, fresh_postgres_database
from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API
from tests.support.specs import two_assistants_spec

pytestmark = pytest.mark.e2e
MODEL_LATENCY_MS = 150
SETTLE_S = 90.0
SETTLED = ("completed", "incomplete", "failed", "cancelled")
# The talkers' runs end at their message limit, not by a termination text: status `incomplete`.
ENDED = {"incomplete"}


@pytest.fixture(scope="module")
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_ms=MODEL_LATENCY_MS, terminate_after=None, record=False) as server:
        yield server


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    database = fresh_postgres_database("autobots_scaled")
    started = Cluster.start(tmp_path_factory.mktemp("cluster"), database, apis=2, workers=2)
    yield started
    started.stop()


@pytest.fixture
def replicas(cluster: Cluster) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of replica A and replica B, with both workers alive."""
    cluster.ensure_workers(2)
    with httpx.Client(base_url=cluster.apis[0].base_url, timeout=60) as a, \
            httpx.Client(base_url=cluster.apis[1].base_url, timeout=60) as b:
        yield a, b


def talkers(model: FakeOpenAIServer, messages: int) -> dict[str, Any]:
    """Two agents taking turns for `messages` messages, each a model call."""
    return two_assistants_spec(model.base_url, max_messages=messages, name="talkers")


def start_run(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    session = client.post(f"{API}/sessions", json={"workflow": spec})
    assert session.status_code == 201, session.text
    posted = client.post(f"{API}/sessions/{session.json()['id']}/messages", json={"content": "talk"})
    assert posted.status_code in (200, 201, 202), posted.text
    return posted.json()["run"]


def wait_until_settled(client: httpx.Client, run_ids: list[str], timeout_s: float = SETTLE_S) -> dict[str, dict]:
    deadline = time.monotonic() + timeout_s
    runs: dict[str, dict] = {}
    while time.monotonic() < deadline:
        runs = {run_id: client.get(f"{API}/runs/{run_id}").json() for run_id in run_ids}
        if all(run["status"] in SETTLED for run in runs.values()):
            return runs
        time.sleep(0.3)
    pending = {run_id: run["status"] for run_id, run in runs.items() if run["status"] not in SETTLED}
    raise AssertionError(f"runs not settled in {timeout_s} s: {pending}")


def stream(client: httpx.Client, run_id: str, last_event_id: int, stop_after: int | None = None,
           into: list[dict] | None = None) -> list[dict]:
    """The run's SSE events after `last_event_id` (appended to `into` as they arrive), until `done` (or
    `stop_after` events, then hang up)."""
    events: list[dict] = [] if into is None else into
    headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last_event_id)}
    with client.stream("GET", f"{API}/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if events[-1]["type"] == "done" or (stop_after is not None and len(events) >= stop_after):
                    break
    return events


def owners(cluster: Cluster, run_ids: list[str]) -> dict[str, str]:
    rows = cluster.sql("SELECT id, owner FROM run WHERE id = ANY(:ids)", ids=run_ids)
    return {run_id: owner for run_id, owner in rows}


def test_runs_spread_over_both_workers_and_all_complete(cluster: Cluster, model: FakeOpenAIServer,
                                                        replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = replicas
    run_ids = [start_run(a if i % 2 else b, talkers(model, 3))["id"] for i in range(50)]
    runs = wait_until_settled(a, run_ids)
    assert {run["status"] for run in runs.values()} == ENDED
    assert all(run["attempt"] == 1 for run in runs.values())
    by_worker = owners(cluster, run_ids)
    pids = {owner.split(":")[1] for owner in by_worker.values()}
    assert pids == {str(w.process.pid) for w in cluster.live_workers}, by_worker


def test_a_killed_workers_runs_resume_on_the_other_and_lose_nothing(
        cluster: Cluster, model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, _ = replicas
    run_ids = [start_run(a, talkers(model, 12))["id"] for _ in range(6)]
    victim = cluster.live_workers[0]
    deadline = time.monotonic() + 30
    while not any(owner and f":{victim.process.pid}:" in owner
                  for owner in owners(cluster, run_ids).values()):
        assert time.monotonic() < deadline, "the first worker never took a run"
        time.sleep(0.1)
    time.sleep(0.6)  # a few messages into its runs
    cluster.kill(victim)
    runs = wait_until_settled(a, run_ids)
    assert {run["status"] for run in runs.values()} == ENDED, runs
    resumed = [run for run in runs.values() if run["attempt"] == 2]
    assert resumed, "no run of the killed worker was resumed"
    for run_id in run_ids:
        events = a.get(f"{API}/runs/{run_id}/events").json()
        seqs = [event["seq"] for event in events]
        assert seqs == list(range(1, len(seqs) + 1)), seqs
        messages = [e for e in events if e["type"] == "message"]
        assert len(messages) >= 11, [e["type"] for e in events]
        assert events[-1]["type"] == "done"
    survivor = cluster.live_workers[0]
    assert {owner.split(":")[1] for owner in owners(cluster, [r["id"] for r in resumed]).values()} == \
        {str(survivor.process.pid)}


def test_a_stream_followed_on_one_replica_continues_on_the_other(
        model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = replicas
    run = start_run(a, talkers(model, 10))
    first = stream(a, run["id"], 0, stop_after=4)
    rest = stream(b, run["id"], first[-1]["seq"])
    seqs = [event["seq"] for event in first + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest[-1]["type"] == "done"
    stored = a.get(f"{API}/runs/{run['id']}/events").json()
    assert [e["seq"] for e in stored] == seqs


def test_a_cancel_sent_to_one_replica_stops_the_run_streamed_on_the_other(
        model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = replicas
    run = start_run(a, talkers(model, 40))
    followed: list[dict] = []
    follower = threading.Thread(target=stream, args=(a, run["id"], 0), kwargs={"into": followed})
    follower.start()
    deadline = time.monotonic() + 30
    while not any(e["type"] == "message" for e in followed):
        assert time.monotonic() < deadline, followed
        time.sleep(0.05)
    answer = b.post(f"{API}/runs/{run['id']}/cancel")
    assert answer.status_code == 200, answer.text
    follower.join(timeout=30)
    assert not follower.is_alive()
    assert [e["type"] for e in followed[-2:]] == ["run.cancelled", "done"]
    assert a.get(f"{API}/runs/{run['id']}").json()["status"] == "cancelled"


def test_an_idempotency_key_replayed_on_the_other_replica_returns_the_same_object(
        model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, b = replicas
    body = {"workflow": talkers(model, 2)}
    headers = {"Idempotency-Key": "scaled-replay-1"}
    first = a.post(f"{API}/sessions", json=body, headers=headers)
    again = b.post(f"{API}/sessions", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["id"] == first.json()["id"]


def test_one_idempotency_key_sent_to_both_replicas_at_once_creates_one_object(
        model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    body = {"workflow": talkers(model, 2)}
    for attempt in range(5):
        headers = {"Idempotency-Key": f"scaled-race-{attempt}"}
        answers: list[httpx.Response] = []

        def post(client: httpx.Client, headers: dict[str, str], into: list[httpx.Response]) -> None:
            into.append(client.post(f"{API}/sessions", json=body, headers=headers))

        threads = [threading.Thread(target=post, args=(client, headers, answers)) for client in replicas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        assert answers[0].json()["id"] == answers[1].json()["id"]


def test_a_worker_started_after_runs_were_queued_picks_them_up(
        cluster: Cluster, model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, _ = replicas
    for worker in cluster.live_workers:
        assert cluster.terminate(worker) == 0, worker.log()[-2000:]
    run_ids = [start_run(a, talkers(model, 2))["id"] for _ in range(5)]
    time.sleep(1)
    assert {a.get(f"{API}/runs/{run_id}").json()["status"] for run_id in run_ids} == {"queued"}
    cluster.start_worker()
    runs = wait_until_settled(a, run_ids)
    assert {run["status"] for run in runs.values()} == ENDED


def test_the_worker_command_refuses_the_embedded_dispatch(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.servers import server_env

    env = server_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    done = subprocess.run([sys.executable, "-m", "autobots", "worker"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "run_dispatch" in done.stderr


def test_a_spec_with_inline_credentials_is_refused_since_workers_elsewhere_could_not_use_them(
        model: FakeOpenAIServer, replicas: tuple[httpx.Client, httpx.Client]) -> None:
    a, _ = replicas
    spec = talkers(model, 2)
    spec["models"]["default"]["api_key"] = "sk-inline-secret"
    answer = a.post(f"{API}/sessions", json={"workflow": spec})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_workflow" and "sk-inline-secret" not in answer.text
    assert any(e["path"] == "models.default.api_key" and "other hosts" in e["message"] for e in error["errors"])
