"""Run slots shared fairly between users: one user's queue never holds every slot while others wait.

A plain semaphore serves waiters first come, first served: a user who queued a hundred runs takes every slot
that frees up until their queue drains, and another user's single run waits behind all of them. Here a freed
slot goes to the waiting user who holds the fewest slots; among those, to the one served longest ago (so users
take turns); each user's own waiters go in arrival order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairSlots:
    """`capacity` slots, granted fairly between users.

    Args:
        capacity: Slots in all (at least 1).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._free = self.capacity
        self._held: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._served: dict[str, int] = {}  # the turn at which each user was last granted a slot
        self._turn = 0

    def held(self, user_id: str) -> int:
        """Slots the user holds now."""
        return self._held.get(user_id, 0)

    @property
    def waiting(self) -> int:
        """Waiters in all."""
        return sum(len(queue) for queue in self._waiting.values())

    @asynccontextmanager
    async def slot(self, user_id: str) -> AsyncIterator[None]:
        """Hold one slot for `user_id` for the duration of the block."""
        await self.acquire(user_id)
        try:
            yield
        finally:
            self.release(user_id)

    async def acquire(self, user_id: str) -> None:
        """Wait for a slot (at once if one is free and nobody waits)."""
        if self._free > 0 and not self._waiting:
            self._grant(user_id)
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(user_id, deque()).append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release(user_id)  # granted, then cancelled before it could run: pass the slot on
            else:
                self._forget(user_id, granted)
            raise

    def release(self, user_id: str) -> None:
        """Give a slot back; it goes to the fairest waiter, if any."""
        held = self._held.get(user_id, 0) - 1
        if held > 0:
            self._held[user_id] = held
        else:
            self._held.pop(user_id, None)
        self._free += 1
        self._dispatch()

    def _dispatch(self) -> None:
        while self._free > 0 and self._waiting:
            user_id = min(self._waiting, key=lambda user: (self._held.get(user, 0), self._served.get(user, 0)))
            queue = self._waiting[user_id]
            granted = queue.popleft()
            if not queue:
                del self._waiting[user_id]
            if granted.done():  # its waiter was cancelled and is yet to resume (and forget it)
                continue
            self._grant(user_id)
            granted.set_result(None)

    def _grant(self, user_id: str) -> None:
        self._free -= 1
        self._held[user_id] = self._held.get(user_id, 0) + 1
        self._turn += 1
        self._served[user_id] = self._turn
        if len(self._served) > 4 * self.capacity + len(self._waiting) + 1024:
            self._forget_idle_users()

    def _forget_idle_users(self) -> None:
        """Users who hold and wait for nothing need no turn record: a new waiter counts as served long ago."""
        active = self._held.keys() | self._waiting.keys()
        self._served = {user: turn for user, turn in self._served.items() if user in active}

    def _forget(self, user_id: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(user_id)
        if queue is None:
            return
        try:
            queue.remove(granted)
        except ValueError:
            return
        if not queue:
            del self._waiting[user_id]
