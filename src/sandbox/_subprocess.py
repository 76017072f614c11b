"""Runs one command as a host subprocess in its own session, streaming bounded output.

The child is watched from the event loop itself: its stdout pipe and a pidfd (Linux ≥ 5.3) are
registered as readers, so an execution costs no extra thread, unlike asyncio's subprocess support on
Python 3.11, which starts a waiting thread per child and builds transports and stream objects
around it. Without pidfds the exit is awaited in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from autobots.sandbox._common import Outcome, OutputSink
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
    output: OutputSink,
    cancellation_token: CancellationToken | None,
    pass_fds: Sequence[int] = (),
) -> Outcome:
    """Starts `argv` in a new session and supervises it; the whole process group dies on timeout/cancel.

    Background jobs left in the session's process group are killed as soon as the command exits
    (before it is reaped, so its pid, the group's id, cannot have been reused). `pass_fds` are inherited.
    """
    child = _Child(asyncio.get_running_loop(), _start(argv, cwd=cwd, env=env, pass_fds=pass_fds), output)

    async def wait_exit() -> int:
        code = await child.exited
        # A grandchild that left the process group may keep the pipe open: drain briefly only.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(child.drained), timeout=_DRAIN_AFTER_KILL_S)
        return code

    async def kill() -> None:
        child.kill_group()

    try:
        return await supervise(wait_exit(), timeout_s=timeout_s, cancellation_token=cancellation_token, kill=kill)
    finally:
        child.close()


def _start(
    argv: Sequence[str], *, cwd: str, env: Mapping[str, str], pass_fds: Sequence[int]
) -> subprocess.Popen[bytes]:
    """Spawns the child in a new session.

    Called on the event loop, as asyncio's own subprocess transport does: Popen returns once the
    child has exec'd (vfork: about a millisecond).
    """
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )


class _Child:
    """Event-loop readers for one child: its output pipe (`drained` at EOF) and its exit (`exited`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], output: OutputSink) -> None:
        assert proc.stdout is not None
        self._loop = loop
        self._proc = proc
        self._output = output
        self._stdout = proc.stdout
        self._fd = proc.stdout.fileno()
        self.drained: asyncio.Future[None] = loop.create_future()
        self.exited: asyncio.Future[int] = loop.create_future()
        self._pidfd: int | None = None
        self._exit_waiter: asyncio.Future[int] | None = None
        os.set_blocking(self._fd, False)
        loop.add_reader(self._fd, self._read)
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self._exit_waiter = asyncio.ensure_future(asyncio.to_thread(self._wait_then_reap))
            self._exit_waiter.add_done_callback(self._exit_waited)
        else:
            loop.add_reader(self._pidfd, self._on_exit)

    def kill_group(self) -> None:
        """SIGKILLs the session's process group (the child is the group leader)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def _read(self) -> None:
        try:
            chunk = os.read(self._fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self._output.feed(chunk)
            return
        self._loop.remove_reader(self._fd)
        if not self.drained.done():
            self.drained.set_result(None)

    def _on_exit(self) -> None:
        self._close_pidfd()
        code = self._reap()
        if not self.exited.done():
            self.exited.set_result(code)

    def _reap(self) -> int:
        """Kills what is left of the process group, then reaps the (exited) child."""
        self.kill_group()
        return self._proc.wait()

    def _wait_then_reap(self) -> int:
        """Without a pidfd (worker thread): waits for the exit without reaping, then `_reap`."""
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self._proc.pid, os.WEXITED | os.WNOWAIT)
        return self._reap()

    def _exit_waited(self, waiter: asyncio.Future[int]) -> None:
        if self.exited.done() or waiter.cancelled():
            return
        if (exc := waiter.exception()) is not None:
            self.exited.set_exception(exc)
        else:
            self.exited.set_result(waiter.result())

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def close(self) -> None:
        """Stops watching and closes the pipe; a child still running was killed by the watchdog."""
        self._close_pidfd()
        self._loop.remove_reader(self._fd)
        self._stdout.close()
        if self._proc.returncode is None:
            self.kill_group()
            self._proc.poll()
