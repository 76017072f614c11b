"""Fair run slots: a freed slot goes to the waiting user with the fewest running runs, users taking turns."""

from __future__ import annotations

import asyncio
import threading

import pytest
from autobots.db.tables import RunEvent
from autobots.runs._fair import FairSlots
from sqlalchemy import select

from tests.support.api import create_session
from tests.support.openai_server import FakeOpenAIServer, RecordedRequest
from tests.support.specs import openai_spec

BOB = {"X-User-Id": "bob"}


async def waiter(slots: FairSlots, user: str, order: list[str], label: str) -> asyncio.Task[None]:
    """A task that takes a slot for `user`, notes `label` in `order`, and keeps the slot until cancelled."""

    async def hold() -> None:
        async with slots.slot(user):
            order.append(label)
            await asyncio.Event().wait()

    task = asyncio.create_task(hold())
    await asyncio.sleep(0)  # it is waiting now, in arrival order
    return task


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


class TestFairSlots:
    async def test_a_free_slot_is_taken_at_once(self):
        slots = FairSlots(2)
        await slots.acquire("a")
        await slots.acquire("a")
        assert slots.held("a") == 2 and slots.waiting == 0

    async def test_a_freed_slot_goes_to_the_user_with_the_fewest_held(self):
        slots = FairSlots(2)
        order: list[str] = []
        first = await waiter(slots, "a", order, "a1")
        second = await waiter(slots, "a", order, "a2")
        queued = [await waiter(slots, "a", order, "a3"), await waiter(slots, "b", order, "b1")]
        second.cancel()
        await settle()
        assert order == ["a1", "a2", "b1"]  # a holds one, b none: b's only waiter goes before a's older one
        for task in [first, *queued]:
            task.cancel()

    async def test_users_with_as_many_held_take_turns(self):
        slots = FairSlots(1)
        order: list[str] = []
        tasks = {"x": await waiter(slots, "x", order, "x")}
        for user, label in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("b", "b2"), ("c", "c1")]:
            tasks[label] = await waiter(slots, user, order, label)
        while len(order) < len(tasks):
            tasks[order[-1]].cancel()  # the holder ends: the slot goes to the next waiter
            await settle()
        assert order == ["x", "a1", "b1", "c1", "a2", "b2", "a3"]
        tasks[order[-1]].cancel()

    async def test_a_cancelled_waiter_takes_no_slot(self):
        slots = FairSlots(1)
        order: list[str] = []
        holder = await waiter(slots, "a", order, "a1")
        gone = await waiter(slots, "b", order, "b1")
        later = await waiter(slots, "c", order, "c1")
        gone.cancel()
        await settle()
        holder.cancel()
        await settle()
        assert order == ["a1", "c1"] and slots.held("b") == 0 and slots.held("c") == 1
        later.cancel()
        await settle()
        assert slots.held("c") == 0 and slots.waiting == 0

    async def test_a_waiter_granted_and_cancelled_at_once_passes_the_slot_on(self):
        slots = FairSlots(1)
        await slots.acquire("a")
        granted = asyncio.create_task(slots.acquire("b"))
        await asyncio.sleep(0)
        other = asyncio.create_task(slots.acquire("c"))
        await asyncio.sleep(0)
        slots.release("a")  # b is granted the slot, but is cancelled before it can run
        granted.cancel()
        await settle()
        assert granted.cancelled() and other.done()
        assert slots.held("b") == 0 and slots.held("c") == 1


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"max_concurrent_runs": 1})


@pytest.fixture
def gated_model(fake_openai: FakeOpenAIServer) -> tuple[FakeOpenAIServer, threading.Event]:
    """The model answers the message "a0" only once the event is set; every other one at once."""
    opened = threading.Event()

    async def respond(request: RecordedRequest) -> str:
        while request.last_user_text() == "a0" and not opened.is_set():  # noqa: ASYNC110 (set from another thread)
            await asyncio.sleep(0.01)
        return fake_openai.default_reply(request)

    fake_openai.responder = respond
    return fake_openai, opened


async def test_another_users_run_starts_before_a_users_queue_drains(client, app, gated_model):
    model, opened = gated_model
    spec = openai_spec(model.base_url)
    posted: dict[str, str] = {}
    for label, headers in [("a0", None), ("a1", None), ("a2", None), ("a3", None), ("b0", BOB)]:
        session = await create_session(client, spec, headers=headers)
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": label},
                                     headers=headers)
        assert response.status_code == 202, response.text
        posted[response.json()["run"]["id"]] = label
    opened.set()  # a0 held the only slot until now; a1, a2, a3 and then b0 were waiting for it
    runs = app.state.services.runs
    assert [(await runs.wait(run_id, limit_s=30)).status for run_id in posted] == ["completed"] * 5
    started = await runs.db.read_in_thread(lambda connection: connection.execute(
        select(RunEvent.run_id).where(RunEvent.type == "run.started").order_by(RunEvent.pk)).scalars().all())
    assert [posted[run_id] for run_id in started] == ["a0", "b0", "a1", "a2", "a3"]
