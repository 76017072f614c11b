"""Runs one command as a host subprocess in its own session, streaming bounded output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from autobots.sandbox._common import BoundedOutput, Outcome
from autobots.sandbox._watch import supervise
from autogen_core import CancellationToken

_READ_CHUNK = 65536
_DRAIN_AFTER_KILL_S = 1.0


async def run_subprocess(
    argv: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    timeout_s: float,
    output: BoundedOutput,
    cancellation_token: CancellationToken | None,
    popen_kwargs: Mapping[str, Any] | None = None,
) -> Outcome:
    """Starts `argv` in a new session and supervises it; the whole process group dies on timeout/cancel."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        **dict(popen_kwargs or {}),
    )
    assert proc.stdout is not None
    reader = asyncio.ensure_future(_pump(proc.stdout, output))

    async def wait_exit() -> int:
        code = await proc.wait()
        # Background jobs left in the session's process group do not outlive the execution.
        await kill()
        # A grandchild that left the process group may keep the pipe open: drain briefly only.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(reader), timeout=_DRAIN_AFTER_KILL_S)
        reader.cancel()
        return code

    async def kill() -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    try:
        return await supervise(wait_exit(), timeout_s=timeout_s, cancellation_token=cancellation_token, kill=kill)
    finally:
        reader.cancel()


async def _pump(stream: asyncio.StreamReader, output: BoundedOutput) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        output.feed(chunk)
