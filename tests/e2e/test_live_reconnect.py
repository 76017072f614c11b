"""A client that drops its stream at random points and reconnects with Last-Event-ID sees every event of a
live run exactly once, and its disconnects do not cancel the run."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API

pytestmark = pytest.mark.e2e
MESSAGES = 10


def read_some(client: httpx.Client, run_id: str, last_seen: int, budget: int) -> list[dict]:
    """Follow the run's stream from `last_seen`; hang up after `budget` events (or at `done`)."""
    events: list[dict] = []
    fields: dict[str, str] = {}
    headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last_seen)}
    with client.stream("GET", f"{API}/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" not in fields:
                continue
            event = json.loads(fields["data"])
            assert int(fields["id"]) == event["seq"] and fields["event"] == event["type"]
            events.append(event)
            fields = {}
            if event["type"] == "done" or len(events) >= budget:
                break
    return events


def test_random_reconnects_lose_and_duplicate_nothing(base_url: str) -> None:
    rng = random.Random(7)
    with FakeOpenAIServer(latency_ms=120, terminate_after=None) as model, \
            httpx.Client(base_url=base_url, timeout=60) as client:
        spec = {"name": "talkers", "type": "autonomous",
                "models": {"default": {"provider": "openai", "model": "m", "base_url": model.base_url}},
                "agents": [{"name": "alice"}, {"name": "bob"}], "sender": "bob", "receiver": "alice",
                "termination": {"text": "TERMINATE", "max_messages": MESSAGES}}
        session = client.post(f"{API}/sessions", json={"workflow": spec}).json()
        run_id = client.post(f"{API}/sessions/{session['id']}/messages", json={"content": "talk"}).json()["run"]["id"]
        seen: list[dict] = []
        reconnects = 0
        while not seen or seen[-1]["type"] != "done":
            last = seen[-1]["seq"] if seen else 0
            seen.extend(read_some(client, run_id, last, budget=rng.randint(1, 3)))
            reconnects += 1
            assert reconnects < 200
        full = client.get(f"{API}/runs/{run_id}/events").json()
        assert [(e["seq"], e["type"]) for e in seen] == [(e["seq"], e["type"]) for e in full]
        assert reconnects > 3
        assert client.get(f"{API}/runs/{run_id}").json()["status"] == "incomplete"  # its message limit ended it
        assert sum(1 for e in seen if e["type"] == "message") == MESSAGES
