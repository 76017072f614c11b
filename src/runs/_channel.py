"""Live run events in memory: a run's full event list while it executes, with followers woken on append."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]
    created_at: int


class RunChannel:
    """Events of one live run. Followers replay what is already there, then wait for more.

    A channel fed from a run worker starts empty: `on_follow` asks the worker, when the first follower comes,
    for the events so far (`extend`) and from then on for each new one, so a run nobody follows costs no
    traffic between the processes."""

    def __init__(self, initial: list[Event], on_follow: Callable[[], None] | None = None) -> None:
        self.events: list[Event] = list(initial)
        self.closed = False
        self._changed = asyncio.Condition()
        self._on_follow = on_follow

    async def append(self, event: Event) -> None:
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def extend(self, events: list[Event]) -> None:
        """Add the events not held yet (a catch-up may overlap what is here)."""
        async with self._changed:
            last = self.events[-1].seq if self.events else 0
            self.events.extend(event for event in events if event.seq > last)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def follow(self, starting_after: int, keepalive_s: float) -> AsyncIterator[Event | None]:
        """Events with seq > starting_after; None every `keepalive_s` of silence (for keep-alive comments)."""
        if self._on_follow is not None:
            self._on_follow()
            self._on_follow = None
        position = starting_after
        while True:
            pending = [event for event in self.events if event.seq > position]
            for event in pending:
                position = event.seq
                yield event
            if self.closed and not any(event.seq > position for event in self.events):
                return
            async with self._changed:
                if any(event.seq > position for event in self.events) or self.closed:
                    continue
                try:
                    # Not `wait_for`, which on Python 3.11 wraps the wait in a task of its own: a follower waits
                    # once per event.
                    async with asyncio.timeout(keepalive_s):
                        await self._changed.wait()
                except TimeoutError:
                    yield None


class ChannelRegistry:
    """Live channels by run, and a way to wait for a run's channel to open (or the run to settle)."""

    def __init__(self) -> None:
        self._channels: dict[str, RunChannel] = {}
        self._changes: dict[str, asyncio.Event] = {}

    def open(self, run_id: str, initial: list[Event], on_follow: Callable[[], None] | None = None) -> RunChannel:
        channel = RunChannel(initial, on_follow)
        self._channels[run_id] = channel
        self.poke(run_id)
        return channel

    def poke(self, run_id: str) -> None:
        """Wake whoever waits in `wait_for_change` for this run."""
        event = self._changes.pop(run_id, None)
        if event is not None:
            event.set()

    def poke_all(self) -> None:
        """Wake every waiter (after notifications from other hosts may have been lost)."""
        for run_id in list(self._changes):
            self.poke(run_id)

    async def wait_for_change(self, run_id: str, limit_s: float) -> None:
        """Until the run's channel opens or the run settles here, or `limit_s` passes."""
        event = self._changes.setdefault(run_id, asyncio.Event())
        try:
            async with asyncio.timeout(limit_s):
                await event.wait()
        except TimeoutError:
            if self._changes.get(run_id) is event:
                del self._changes[run_id]

    def get(self, run_id: str) -> RunChannel | None:
        return self._channels.get(run_id)

    def discard(self, run_id: str) -> None:
        self._channels.pop(run_id, None)
