"""The `openai` provider end to end: a real server calls a fake OpenAI-compatible server on loopback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIServer, _usage
from tests.support.server_api import API, read_stream

pytestmark = pytest.mark.e2e

INLINE_KEY = "sk-e2e-inline"
REPLY = "The answer is 84.\nTERMINATE"
PRICE = {"prompt_per_1k": 0.5, "completion_per_1k": 1.5}


def openai_spec(base_url: str) -> dict[str, object]:
    return {
        "name": "openai-e2e",
        "type": "autonomous",
        "models": {"default": {"provider": "openai", "model": "some-local-model", "base_url": base_url,
                               "api_key": INLINE_KEY, "price": PRICE}},
        "agents": [
            {"name": "assistant", "kind": "assistant", "system_message": "You answer arithmetic questions."},
            {"name": "user_proxy", "kind": "userproxy"},
        ],
        "sender": "user_proxy",
        "receiver": "assistant",
        "termination": {"text": "TERMINATE", "max_messages": 6},
    }


def test_openai_provider_with_inline_key(server, fake_openai: FakeOpenAIServer):
    fake_openai.responder = lambda request: REPLY
    bodies: dict[str, str] = {}

    def keep(label: str, response: httpx.Response, status: int = 200) -> dict:
        assert response.status_code == status, f"{label}: {response.status_code} {response.text}"
        bodies[label] = response.text
        return response.json()

    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        workflow = keep("POST /workflows", client.post(f"{API}/workflows", json=openai_spec(fake_openai.base_url)), 201)
        assert "api_key" not in workflow["spec"]["models"]["default"]
        session = keep("POST /sessions", client.post(f"{API}/sessions", json={"workflow_id": workflow["id"]}), 201)
        posted = keep("POST /messages?wait=true", client.post(
            f"{API}/sessions/{session['id']}/messages", params={"wait": "true"}, json={"content": "What is 12*(3+4)?"}))
        run = posted["run"]
        assert run["status"] == "completed", posted
        assert posted["reply"]["content"].startswith("The answer is 84.")

        requests = fake_openai.chat_requests()
        assert requests, "the fake OpenAI server got no chat completion request"
        assert {r.authorization for r in requests} == {f"Bearer {INLINE_KEY}"}
        assert {r.model for r in requests} == {"some-local-model"}
        expected = [_usage(r, REPLY) for r in requests]
        prompt = sum(u["prompt_tokens"] for u in expected)
        completion = sum(u["completion_tokens"] for u in expected)
        assert run["usage"] == {"prompt_tokens": prompt, "completion_tokens": completion,
                                "total_tokens": prompt + completion}
        assert run["cost"] == pytest.approx(prompt / 1000 * PRICE["prompt_per_1k"]
                                            + completion / 1000 * PRICE["completion_per_1k"])
        assert posted["reply"]["metadata"]["usage"] == run["usage"]

        keep("GET /workflows/{id}", client.get(f"{API}/workflows/{workflow['id']}"))
        keep("GET /workflows", client.get(f"{API}/workflows"))
        keep("GET /sessions/{id}", client.get(f"{API}/sessions/{session['id']}"))
        keep("GET /sessions/{id}/messages", client.get(f"{API}/sessions/{session['id']}/messages"))
        keep("GET /runs/{id}", client.get(f"{API}/runs/{run['id']}"))
        keep("GET /sessions/{id}/runs", client.get(f"{API}/sessions/{session['id']}/runs"))
        keep("GET /runs/{id}/events", client.get(f"{API}/runs/{run['id']}/events"))
        _, events = read_stream(client, "GET", f"{API}/runs/{run['id']}/events")
        bodies["GET /runs/{id}/events (SSE)"] = repr(events)
        assert events[-2]["type"] == "run.completed" and events[-2]["data"]["usage"] == run["usage"]
        item = keep("POST /publish", client.post(f"{API}/sessions/{session['id']}/publish",
                                                 json={"tags": ["e2e-openai"]}), 201)
        keep("GET /gallery/{id}", client.get(f"{API}/gallery/{item['id']}"))
        keep("GET /gallery?tag", client.get(f"{API}/gallery", params={"tag": "e2e-openai"}))
        assert client.delete(f"{API}/gallery/{item['id']}").status_code == 204

    assert [label for label, text in bodies.items() if INLINE_KEY in text] == []
    assert INLINE_KEY not in server.log(), "the inline key was logged"
    database = Path(server.env["AUTOBOTS_DATABASE_URL"].removeprefix("sqlite:///"))
    if database.is_file():
        stored = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert INLINE_KEY.encode() not in stored, "the inline key was stored"
