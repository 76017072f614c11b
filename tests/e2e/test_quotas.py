"""Per-user quotas on real servers (`apikey` mode, streams held open over real connections): one user at their
limits does not keep another from being served.

The model answers nothing until the module ends, so the first run holds the only run slot and every later run
stays queued: their event streams stay open.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIServer, RecordedRequest
from tests.support.server_api import API
from tests.support.servers import ServerProcess, create_api_keys, launch_server, wait_ready
from tests.support.specs import openai_spec

pytestmark = pytest.mark.e2e
SSE = {"Accept": "text/event-stream"}
# Raised for the bounded test: what one user holds there.
STREAMS, RUNS = 200, 100


@pytest.fixture(scope="module")
def answering() -> threading.Event:
    """Set once the module's tests are done: the model answers from then on."""
    return threading.Event()


@pytest.fixture(scope="module")
def model(answering: threading.Event) -> Iterator[FakeOpenAIServer]:
    async def respond(request: RecordedRequest) -> str:
        while not answering.is_set():  # noqa: ASYNC110 (set from another thread)
            await asyncio.sleep(0.05)
        return "done TERMINATE"

    with FakeOpenAIServer(responder=respond) as server:
        yield server


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, model: FakeOpenAIServer,
            answering: threading.Event) -> Iterator[dict[str, tuple[ServerProcess, dict[str, str]]]]:
    """Two `apikey` servers, each with keys for alice and bob, where one run executes at a time: `default` with
    the default quotas, `raised` where one user may hold `STREAMS` streams and `RUNS` active runs (no rate
    limit)."""
    root = tmp_path_factory.mktemp("quotas")
    common = {"AUTOBOTS_AUTH_MODE": "apikey", "AUTOBOTS_MAX_CONCURRENT_RUNS": "1", "AUTOBOTS_RUN_WORKERS": "1",
              "AUTOBOTS_MODEL_TIMEOUT_S": "300", "AUTOBOTS_RUN_MAX_SECONDS": "600",
              "AUTOBOTS_ALLOWED_BASE_URLS": json.dumps([model.base_url.removesuffix("v1")])}
    launched = {
        "default": launch_server(root / "default", f"sqlite:///{root / 'default.sqlite'}", **common),
        "raised": launch_server(root / "raised", f"sqlite:///{root / 'raised.sqlite'}", **common,
                                AUTOBOTS_MAX_STREAMS_PER_USER=str(STREAMS),
                                AUTOBOTS_MAX_ACTIVE_RUNS_PER_USER=str(RUNS), AUTOBOTS_RATE_LIMIT_PER_KEY="0"),
    }
    try:
        yield {name: (wait_ready(server), create_api_keys(server, "alice", "bob"))
               for name, server in launched.items()}
    finally:
        answering.set()  # a run stuck in a model call would hold up the servers' shutdown
        for server in launched.values():
            server.stop()


async def client_for(stack: AsyncExitStack, server: ServerProcess, key: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=50)
    return await stack.enter_async_context(httpx.AsyncClient(
        base_url=f"{server.base_url}{API}", headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits))


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


async def queue_runs(client: httpx.AsyncClient, base_url: str, count: int) -> tuple[str, list[str]]:
    """A session with `count` runs of the client's user: the first waits for the model (or for the only slot),
    the others are queued behind it."""
    created = await client.post("/sessions", json={"workflow": openai_spec(base_url)})
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    url = f"/sessions/{session_id}/messages"
    runs = []
    for start in range(0, count, 20):
        posted = await asyncio.gather(*(client.post(url, json={"content": f"job {i}", "if_busy": "enqueue"})
                                        for i in range(start, min(count, start + 20))))
        assert [p.status_code for p in posted] == [202] * len(posted), posted[0].text
        runs += [p.json()["run"]["id"] for p in posted]
    return session_id, runs


async def open_stream(stack: AsyncExitStack, client: httpx.AsyncClient, run_id: str) -> httpx.Response:
    """A run's event stream, held open until `stack` closes (or read whole if the server refused it)."""
    response = await stack.enter_async_context(client.stream("GET", f"/runs/{run_id}/events", headers=SSE))
    if response.status_code != 200:
        await response.aread()
    return response


async def stream_opens(client: httpx.AsyncClient, run_id: str) -> bool:
    async with AsyncExitStack() as one:
        return (await open_stream(one, client, run_id)).status_code == 200


def assert_quota_error(response: httpx.Response, code: str, message: str) -> None:
    assert response.status_code == 429
    assert response.headers["retry-after"] == "5" and response.headers["x-request-id"]
    assert response.json() == {"error": {"type": "rate_limit_error", "code": code, "param": None, "message": message}}


async def test_the_33rd_stream_of_a_user_is_429_and_a_closed_one_frees_its_place(servers, model, stack):
    server, keys = servers["default"]
    alice, bob = await client_for(stack, server, keys["alice"]), await client_for(stack, server, keys["bob"])
    _, [run_id] = await queue_runs(alice, model.base_url, 1)
    held = AsyncExitStack()
    streams = [await open_stream(held, alice, run_id) for _ in range(32)]
    assert [s.status_code for s in streams] == [200] * 32
    assert_quota_error(await open_stream(stack, alice, run_id), "too_many_streams",
                       "you have 32 event streams open, the most allowed per user; close one first")
    _, [bobs_run] = await queue_runs(bob, model.base_url, 1)
    assert await stream_opens(bob, bobs_run)
    await held.aclose()  # the server notices the disconnects and gives the places back
    for _ in range(100):
        if await stream_opens(alice, run_id):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("alice's closed streams were never given back")


async def test_a_user_holding_many_streams_and_runs_does_not_keep_another_from_being_served(servers, model, stack):
    server, keys = servers["raised"]
    alice, bob = await client_for(stack, server, keys["alice"]), await client_for(stack, server, keys["bob"])
    session_id, runs = await queue_runs(alice, model.base_url, RUNS)
    refused = await alice.post(f"/sessions/{session_id}/messages", json={"content": "one more", "if_busy": "enqueue"})
    assert_quota_error(refused, "too_many_active_runs", f"you have {RUNS} active runs (queued or running), the most "
                       "allowed per user; wait for one to end or cancel one")
    streams: list[httpx.Response] = []
    for start in range(0, STREAMS, 50):
        streams += await asyncio.gather(*(open_stream(stack, alice, runs[i % RUNS]) for i in range(start, start + 50)))
    assert [s.status_code for s in streams] == [200] * STREAMS
    assert_quota_error(await open_stream(stack, alice, runs[0]), "too_many_streams",
                       f"you have {STREAMS} event streams open, the most allowed per user; close one first")

    listed = await bob.get("/sessions")
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == []
    bobs_session, [bobs_run] = await queue_runs(bob, model.base_url, 1)
    assert [s["id"] for s in (await bob.get("/sessions")).json()["data"]] == [bobs_session]
    assert await stream_opens(bob, bobs_run)
    listed_runs: dict[str, Any] = (await alice.get(f"/sessions/{session_id}/runs", params={"limit": 100})).json()
    assert len(listed_runs["data"]) == RUNS and not listed_runs["has_more"]
