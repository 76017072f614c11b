"""The host-side watchdog shared by every backend: timeout, cancellation token, task cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from autobots.sandbox._common import EXIT_CANCELLED, EXIT_TIMEOUT, Outcome
from autogen_core import CancellationToken

KILL_GRACE_S = 5.0
"""How long to wait for a killed process to be reaped before giving up on its exit status."""


async def supervise(
    done: Awaitable[int],
    *,
    timeout_s: float,
    cancellation_token: CancellationToken | None,
    kill: Callable[[], Awaitable[None]],
) -> Outcome:
    """Waits for `done` (the exit code) unless the timeout passes or the token is cancelled.

    On timeout or cancellation `kill` is awaited, then the process is reaped (bounded by
    `KILL_GRACE_S`). If the calling task itself is cancelled, the process is killed before the
    `CancelledError` propagates.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(done)
    cancelled = asyncio.Event()
    if cancellation_token is not None:
        cancellation_token.add_callback(lambda: loop.call_soon_threadsafe(cancelled.set))
    waiter = asyncio.ensure_future(cancelled.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        waiter.cancel()
        await asyncio.shield(_kill_and_reap(task, kill))
        raise
    waiter.cancel()
    if task.done():
        return Outcome(exit_code=task.result())
    await _kill_and_reap(task, kill)
    if cancelled.is_set():
        return Outcome(exit_code=EXIT_CANCELLED, cancelled=True)
    return Outcome(exit_code=EXIT_TIMEOUT, timed_out=True)


async def _kill_and_reap(task: asyncio.Future[int], kill: Callable[[], Awaitable[None]]) -> None:
    await kill()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=KILL_GRACE_S)
    except (TimeoutError, Exception):
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
