"""A shared (`apikey`) server keeps its environment and its network to itself, whatever a spec names.

One real server with a canary variable and a provider key in its environment, three OpenAI-compatible listeners
on loopback: `trap` (no spec may reach it), `allowed` (under `allowed_base_urls`) and `operator` (the address of
a registered model endpoint). Every request any listener received is checked for the server's secrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIServer
from tests.support.server_api import API
from tests.support.servers import ServerProcess, create_api_keys, launch_server, stop_and_check, wait_ready

pytestmark = pytest.mark.e2e

CANARY = "canary-5b1f0e7d9a"
SERVER_KEY = "sk-server-4c2d8e"
TEAM_KEY = "sk-team-operator"
URL_SECRET = "pw-in-url-93ab"


@pytest.fixture(scope="module")
def listeners() -> Iterator[dict[str, FakeOpenAIServer]]:
    servers = {name: FakeOpenAIServer(reply_text=f"{name} says 84.").start()
               for name in ("trap", "allowed", "operator")}
    try:
        yield servers
    finally:
        for server in servers.values():
            server.stop()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory,
                  listeners: dict[str, FakeOpenAIServer]) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    root = tmp_path_factory.mktemp("model-access")
    endpoints = {"team": {"provider": "openai", "model": "team-model", "base_url": listeners["operator"].base_url,
                          "api_key_env": "TEAM_KEY"}}
    server = wait_ready(launch_server(
        root, f"sqlite:///{root / 'autobots.sqlite'}", AUTOBOTS_AUTH_MODE="apikey",
        AUTOBOTS_MODEL_ENDPOINTS=json.dumps(endpoints),
        AUTOBOTS_ALLOWED_BASE_URLS=json.dumps([listeners["allowed"].base_url]),
        CANARY_SECRET=CANARY, OPENAI_API_KEY=SERVER_KEY, TEAM_KEY=TEAM_KEY))
    headers = {"Authorization": f"Bearer {create_api_keys(server, 'mallory')['mallory']}"}
    try:
        yield server, headers
    finally:
        stop_and_check(server)
        for name, listener in listeners.items():
            for request in listener.requests:
                seen = json.dumps({"headers": request.headers, "body": request.body}, default=str)
                assert CANARY not in seen and SERVER_KEY not in seen, f"{name} received a server secret"
        assert CANARY not in server.log() and SERVER_KEY not in server.log()


def spec(model: dict[str, Any]) -> dict[str, Any]:
    return {"name": "probe", "type": "autonomous", "models": {"default": model},
            "agents": [{"name": "assistant"}, {"name": "user_proxy", "kind": "userproxy"}],
            "sender": "user_proxy", "receiver": "assistant", "termination": {"max_messages": 4}}


def validation_errors(server: ServerProcess, headers: dict[str, str], model: dict[str, Any]) -> list[dict]:
    response = httpx.post(f"{server.base_url}{API}/workflows/validate", json=spec(model), headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["errors"]  # type: ignore[no-any-return]


def run_once(server: ServerProcess, headers: dict[str, str], model: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        session = client.post(f"{API}/sessions", json={"workflow": spec(model)})
        assert session.status_code == 201, session.text
        posted = client.post(f"{API}/sessions/{session.json()['id']}/messages", params={"wait": "true"},
                             json={"content": "What is 12*(3+4)?"})
        assert posted.status_code == 200, posted.text
        return posted.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "0x7f.1"])
def test_a_base_url_reaching_the_servers_loopback_is_refused(shared_server, listeners, host: str) -> None:
    server, headers = shared_server
    url = f"http://{host}:{listeners['trap'].port}/v1"
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        response = client.post(f"{API}/sessions", json={"workflow": spec({"provider": "openai", "model": "m",
                                                                           "base_url": url})})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["param"] == "workflow.models.default.base_url"
    assert error["code"] == "invalid_workflow" and "may not be used" in error["message"]
    assert listeners["trap"].requests == []


def test_a_key_variable_the_operator_did_not_allow_is_refused(shared_server) -> None:
    server, headers = shared_server
    errors = validation_errors(server, headers, {"provider": "openai", "model": "m", "api_key_env": "CANARY_SECRET"})
    assert [e["path"] for e in errors] == ["models.default.api_key_env"]
    assert CANARY not in json.dumps(errors)


def test_an_allowed_base_url_may_not_take_a_key_from_the_environment(shared_server, listeners) -> None:
    server, headers = shared_server
    errors = validation_errors(server, headers, {"provider": "openai", "model": "m", "api_key_env": "OPENAI_API_KEY",
                                                 "base_url": listeners["allowed"].base_url})
    assert [e["path"] for e in errors] == ["models.default.api_key_env"]


def test_an_allowed_base_url_works_without_the_servers_key(shared_server, listeners) -> None:
    server, headers = shared_server
    listeners["allowed"].requests.clear()
    posted = run_once(server, headers, {"provider": "openai", "model": "m", "base_url": listeners["allowed"].base_url})
    assert posted["run"]["status"] == "completed", posted
    assert posted["reply"]["content"].startswith("allowed says 84.")
    assert {r.authorization for r in listeners["allowed"].chat_requests()} == {"Bearer not-needed"}


def test_an_operator_endpoint_gets_the_operators_key(shared_server, listeners) -> None:
    server, headers = shared_server
    listeners["operator"].requests.clear()
    posted = run_once(server, headers, {"endpoint": "team", "temperature": 0.3})
    assert posted["run"]["status"] == "completed", posted
    requests = listeners["operator"].chat_requests()
    assert {r.authorization for r in requests} == {f"Bearer {TEAM_KEY}"}
    assert {(r.model, r.temperature) for r in requests} == {("team-model", 0.3)}


def test_an_unknown_endpoint_is_refused(shared_server) -> None:
    server, headers = shared_server
    errors = validation_errors(server, headers, {"endpoint": "nope"})
    assert errors == [{"path": "models.default.endpoint",
                       "message": "unknown endpoint 'nope'; this server offers: default, team"}]


def test_credentials_in_a_base_url_are_neither_stored_nor_published(shared_server, listeners) -> None:
    server, headers = shared_server
    allowed = listeners["allowed"]
    url = f"http://user:{URL_SECRET}@127.0.0.1:{allowed.port}/v1"
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        workflow = client.post(f"{API}/workflows", json=spec({"provider": "openai", "model": "m", "base_url": url}))
        assert workflow.status_code == 201, workflow.text
        assert workflow.json()["spec"]["models"]["default"]["base_url"] == \
            f"http://REDACTED@127.0.0.1:{allowed.port}/v1"
        session = client.post(f"{API}/sessions", json={"workflow_id": workflow.json()["id"]}).json()
        published = client.post(f"{API}/sessions/{session['id']}/publish", json={"tags": ["probe"]})
        assert published.status_code == 201, published.text
        listed = client.get(f"{API}/gallery", params={"tag": "probe"})
        for text in (workflow.text, published.text, listed.text, client.get(f"{API}/workflows").text):
            assert URL_SECRET not in text
