"""Recovery (`RunManager.recover_orphans`, `runs/_recovery.py`): a run whose executor died mid-way goes back to the
queue when its workflow can resume, and its next attempt continues it; when it cannot (a sequential workflow),
it ends `failed` with error type `interrupted`.

The executor that dies is a `RunEngine` in this process whose owner names a process that has exited, as a
crashed server or worker leaves it; the model holds its second call, so the run stays mid-way."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from autobots.config import Settings
from autobots.db import Database
from autobots.db.tables import Run
from autobots.runs import RunChannel, RunManager
from autobots.runs._engine import RunEngine

from tests.support.ledger import create_chat, dead_owner, queue_run, read_events, read_messages, read_run
from tests.support.openai_server import FakeOpenAIServer, RecordedRequest

MESSAGES = 4


class HoldSecondCall:
    """A model responder that holds its second call until `release()`; every other call is answered at once."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        self.server = server
        self.calls = 0
        self._released = threading.Event()  # set from the test's thread, read on the server's

    async def __call__(self, request: RecordedRequest) -> str:
        self.calls += 1
        if self.calls == 2:
            while not self._released.is_set():  # noqa: ASYNC110 (a threading.Event: another thread sets it)
                await asyncio.sleep(0.02)
        return self.server.default_reply(request)

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(terminate_after=None) as server:
        yield server


def chat_spec(base_url: str) -> dict[str, Any]:
    return {
        "name": "two-talkers", "type": "autonomous",
        "models": {"default": {"provider": "openai", "model": "local-model", "base_url": base_url}},
        "agents": [{"name": "alice", "system_message": "You talk."}, {"name": "bob", "system_message": "You talk."}],
        "sender": "bob", "receiver": "alice",
        "termination": {"text": "TERMINATE", "max_messages": MESSAGES},
    }


def steps_spec(base_url: str) -> dict[str, Any]:
    return {
        "name": "steps", "type": "sequential",
        "models": {"default": {"provider": "openai", "model": "local-model", "base_url": base_url}},
        "agents": [{"name": "one"}, {"name": "two"}, {"name": "three"}], "steps": ["one", "two", "three"],
    }


class Followers:
    """Nobody follows the crashed executor's runs: a `RunObserver` that keeps nothing."""

    def open(self, run_id: str, initial: list[Any]) -> RunChannel:
        return RunChannel(initial)

    def discard(self, run_id: str) -> None:
        pass

    def settled(self, run_id: str) -> None:
        pass

    def released(self, session_id: str) -> None:
        pass


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 (polls the database, which announces nothing)
            await asyncio.sleep(0.05)


@pytest.fixture
async def crashed(db: Database, settings: Settings,
                  model: FakeOpenAIServer) -> AsyncIterator[Callable[[Run], Awaitable[Run]]]:
    """Has a queued run executed by an executor that then 'dies' mid-way: once the run's first message and
    checkpoint are committed, with its second model call held. Returns the run as the executor left it."""
    hold = model.responder = HoldSecondCall(model)
    engine = RunEngine(db, settings, None, Followers(), max_concurrent=1, owner=dead_owner())
    await engine.start()

    async def crash(run: Run) -> Run:
        engine.kick(run.session_id, run.user_id)

        async def mid_way() -> bool:
            return [e.type for e in await read_events(db, run.id)].count("message") == 1

        await until(mid_way)
        return await read_run(db, run.id)

    try:
        yield crash
    finally:
        # The engine stops its team once the held call returns (AutoGen waits for the call in progress).
        stopping = asyncio.create_task(engine.shutdown())
        await asyncio.sleep(0)
        hold.release()
        await stopping


class TestRecoverOrphans:
    async def test_a_run_that_can_resume_is_queued_again_and_its_next_attempt_finishes_it(
            self, db: Database, settings: Settings, model: FakeOpenAIServer,
            crashed: Callable[[Run], Awaitable[Run]]) -> None:
        chat = await create_chat(db, chat_spec(model.base_url))
        left = await crashed(await queue_run(db, chat, "chat"))
        assert (left.status, left.attempt) == ("running", 1)
        assert left.checkpoint is not None and left.checkpoint["team"] is not None
        manager = RunManager(db, settings)
        assert await manager.recover_orphans() == 1
        requeued = await read_run(db, left.id)
        assert (requeued.status, requeued.attempt, requeued.owner) == ("queued", 1, None)
        await manager.start()
        try:
            finished = await manager.wait(left.id, limit_s=60)
        finally:
            await manager.shutdown()
        assert (finished.status, finished.attempt) == ("incomplete", 2)
        types = [e.type for e in await read_events(db, left.id)]
        assert types == ["run.queued", "run.started", "message", "run.queued", "run.started",
                         *["message"] * (MESSAGES - 1), "run.incomplete", "done"]
        reply = (await read_messages(db, chat.id))[-1]
        assert [m["source"] for m in reply.meta["messages"]] == ["alice", "bob"] * (MESSAGES // 2)

    async def test_a_sequential_run_stopped_mid_way_fails_as_interrupted(
            self, db: Database, settings: Settings, model: FakeOpenAIServer,
            crashed: Callable[[Run], Awaitable[Run]]) -> None:
        chat = await create_chat(db, steps_spec(model.base_url))
        left = await crashed(await queue_run(db, chat, "go"))
        assert (left.status, left.checkpoint) == ("running", {"team": None})
        assert await RunManager(db, settings).recover_orphans() == 1
        failed = await read_run(db, left.id)
        assert (failed.status, failed.attempt, failed.owner) == ("failed", 1, None)
        assert failed.error == {"type": "interrupted", "message": "the server process running it stopped"}
        types = [e.type for e in await read_events(db, left.id)]
        assert types == ["run.queued", "run.started", "message", "run.failed", "done"]
        assert [m.role for m in await read_messages(db, chat.id)] == ["user"]
