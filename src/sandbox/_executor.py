"""`SandboxExecutor`: AutoGen's `CodeExecutor` on top of one backend runner."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from autobots.sandbox import _quota
from autobots.sandbox._common import (
    EXIT_CANCELLED,
    EXIT_QUOTA_EXCEEDED,
    EXIT_TIMEOUT,
    START_ATTEMPTS,
    BackendKind,
    BoundedOutput,
    Outcome,
    interpreter_for,
    start_backoff_s,
    timeout_message,
    unsupported_language_message,
    write_code_file,
)
from autobots.sandbox._errors import SandboxError
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor
from autogen_ext.code_executors._common import CommandLineCodeResult

logger = logging.getLogger(__name__)

_INLINE_WRITE_LIMIT = 64 * 1024
"""Code blocks up to this many characters are written on the event loop: writing a small file into the
page cache takes less time than handing it to a worker thread and back."""


class Runner(Protocol):
    """One backend's way to run a command in a run's workspace."""

    kind: BackendKind
    workspace: Path

    async def prepare(self) -> None: ...

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome: ...

    async def close(self) -> None: ...


class SandboxExecutor(CodeExecutor):
    """Runs agents' code blocks in a run's sandbox.

    Blocks run in order in the run's workspace and stop at the first failure. The output is the
    combined stdout+stderr of all blocks, capped at `output_limit` bytes (then
    "[output truncated at N bytes]"). `timeout_s` bounds one `execute_code_blocks` call as a
    whole: past it the process tree is killed and the result is exit code 124 with
    "[timed out after N s]" at the end. When the cancellation token fires, the running process is
    killed and `asyncio.CancelledError` is raised (as AutoGen's interface documents). Nothing a
    block starts outlives its execution: background processes are killed when the block ends.

    The workspace is held to `quota_bytes` (see `_quota`): an execution that goes past it is killed, what it
    wrote is removed, and the result is exit code 122 with "[workspace quota exceeded: ...]" at the end. When
    the sandbox fails to start the code (nothing of it ran), the start is retried `START_ATTEMPTS` times with
    backoff; if it never starts, `SandboxError` is raised, never a result that would pass the sandbox's error
    off as the code's own output.

    `stop()` releases what the run holds in its backend (the docker container) through the
    manager; the workspace stays. `start()` is cheap: resources are acquired on first execution.

    Args:
        runner: The backend runner bound to the run's workspace.
        run_id: The run this executor belongs to.
        timeout_s: Time budget of one `execute_code_blocks` call, in seconds.
        output_limit: Maximum bytes of output kept.
        quota_bytes: Disk the run's workspace may use.
        release: Called by `stop()`; the manager's `release(run_id)`.
        track: Awaited before each execution so the manager knows the runner holds resources (and the
            workspace is in use).
    """

    def __init__(
        self,
        runner: Runner,
        *,
        run_id: str,
        timeout_s: float,
        output_limit: int,
        quota_bytes: int,
        release: Callable[[str], Awaitable[None]],
        track: Callable[[str, Runner], Awaitable[None]],
    ) -> None:
        self._runner = runner
        self.run_id = run_id
        self.timeout_s = timeout_s
        self._output_limit = output_limit
        self._quota = quota_bytes
        self._release = release
        self._track = track
        self._lock = asyncio.Lock()
        self.start_failures = 0
        """Starts of the code that failed and were retried or given up (for tests and logs)."""

    @property
    def kind(self) -> BackendKind:
        return self._runner.kind

    @property
    def workspace(self) -> Path:
        return self._runner.workspace

    @property
    def runner(self) -> Runner:
        return self._runner

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> CommandLineCodeResult:
        """Runs the blocks in order; see the class docstring for limits and outcomes.

        Raises:
            asyncio.CancelledError: The token was cancelled; the running process was killed.
            SandboxError: The sandbox could not start the code, or could not be set up for the run.
        """
        async with self._lock:
            return await self._execute(code_blocks, cancellation_token)

    async def _execute(self, code_blocks: list[CodeBlock], token: CancellationToken) -> CommandLineCodeResult:
        if token.is_cancelled():
            raise asyncio.CancelledError("code execution cancelled")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        output = BoundedOutput(self._output_limit)
        exit_code, code_file, timed_out = 0, None, False
        await self._track(self.run_id, self._runner)
        await self._runner.prepare()
        started_ns = time.time_ns()
        # The quota watch kills the execution through a token of its own, linked to the caller's.
        execution = CancellationToken()
        token.add_callback(execution.cancel)
        watch = _QuotaWatch(self._runner.workspace, self._quota, execution)
        try:
            for block in code_blocks:
                language = interpreter_for(block.language)
                if language is None:
                    output.feed((unsupported_language_message(block.language) + "\n").encode())
                    exit_code = 1
                    break
                interpreter, extension = language
                try:
                    if len(block.code) <= _INLINE_WRITE_LIMIT:
                        code_file = write_code_file(self._runner.workspace, block.code, extension)
                    else:
                        code_file = await asyncio.to_thread(write_code_file, self._runner.workspace, block.code,
                                                            extension)
                except OSError as exc:
                    output.feed(f"sandbox error: could not write the code file: {exc.strerror or exc}\n".encode())
                    exit_code = 1
                    break
                outcome = await self._run_started([interpreter, code_file], deadline=deadline, output=output,
                                                  token=execution)
                if outcome.cancelled and not watch.exceeded:
                    raise asyncio.CancelledError("code execution cancelled")
                if outcome.cancelled or outcome.timed_out:
                    timed_out = outcome.timed_out
                    break
                exit_code = outcome.exit_code
                if exit_code != 0:
                    break
        finally:
            await watch.stop()
        text = output.text()
        if timed_out:
            text, exit_code = _last_line(text, timeout_message(self.timeout_s)), EXIT_TIMEOUT
        over_quota = await self._enforce_quota(started_ns)
        if over_quota is not None:
            text, exit_code = _last_line(text, over_quota), EXIT_QUOTA_EXCEEDED
        return CommandLineCodeResult(exit_code=exit_code, output=text, code_file=code_file)

    async def _run_started(self, argv: list[str], *, deadline: float, output: BoundedOutput,
                           token: CancellationToken) -> Outcome:
        """Runs `argv`, trying again (with backoff) while the sandbox fails to start it.

        Raises:
            SandboxError: It did not start in `START_ATTEMPTS` tries.
        """
        loop = asyncio.get_running_loop()
        for attempt in range(START_ATTEMPTS):
            outcome = await self._runner.run(argv, timeout_s=deadline - loop.time(), output=output,
                                             cancellation_token=token)
            if outcome.start_error is None:
                return outcome
            self.start_failures += 1
            logger.warning("the %s sandbox of run %s could not start the code (try %d of %d): %s", self.kind,
                           self.run_id, attempt + 1, START_ATTEMPTS, outcome.start_error)
            if attempt + 1 < START_ATTEMPTS and await _cancelled_within(token, start_backoff_s(attempt)):
                return Outcome(exit_code=EXIT_CANCELLED, cancelled=True)
        raise SandboxError(f"the sandbox could not start the code ({START_ATTEMPTS} tries): {outcome.start_error}")

    async def _enforce_quota(self, started_ns: int) -> str | None:
        """After an execution: None when the workspace is within its quota; else removes what the execution
        wrote until it is, and returns the line that says so."""
        usage = await asyncio.to_thread(_quota.measure, self._runner.workspace, changed_since_ns=started_ns)
        if usage.total <= self._quota:
            return None
        removed = await asyncio.to_thread(_quota.trim, self._runner.workspace, usage, self._quota)
        logger.info("run %s went over its workspace quota (%d bytes); removed %d file(s)", self.run_id,
                    usage.total, len(removed))
        return _quota.describe(usage.total, self._quota, removed)

    async def start(self) -> None:
        """Nothing to do: the backend is acquired lazily on the first execution."""

    async def stop(self) -> None:
        """Releases the run's backend resources (its container); the workspace stays."""
        await self._release(self.run_id)

    async def restart(self) -> None:
        """Drops the run's container (if any); the next execution gets a fresh one."""
        await self.stop()
        await self.start()


class _QuotaWatch:
    """Measures the workspace every `_quota.POLL_S` while an execution runs; cancels `token` once it is over
    `limit` bytes (`exceeded`). The first measurement comes after one interval: most executions are over by then.
    """

    def __init__(self, workspace: Path, limit: int, token: CancellationToken) -> None:
        self._workspace = workspace
        self._limit = limit
        self._token = token
        self.exceeded = False
        self._task = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        interval = _quota.POLL_S
        while True:
            await asyncio.sleep(interval)
            began = loop.time()
            usage = await asyncio.to_thread(_quota.measure, self._workspace)
            if usage.total > self._limit:
                self.exceeded = True
                self._token.cancel()
                return
            # A workspace slow to walk is walked less often, so the watch never costs more than a tenth of a core.
            interval = max(_quota.POLL_S, 10 * (loop.time() - began))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def _last_line(text: str, line: str) -> str:
    """`text` ending with `line` on a line of its own."""
    text = text.rstrip("\n")
    return f"{text}\n{line}" if text else line


async def _cancelled_within(token: CancellationToken, delay_s: float) -> bool:
    """Waits `delay_s`; True as soon as `token` is cancelled meanwhile."""
    loop = asyncio.get_running_loop()
    fired = asyncio.Event()
    token.add_callback(lambda: loop.call_soon_threadsafe(fired.set))
    try:
        await asyncio.wait_for(fired.wait(), timeout=delay_s)
    except TimeoutError:
        return False
    return True
