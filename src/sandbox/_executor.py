"""`SandboxExecutor`: AutoGen's `CodeExecutor` on top of one backend runner."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from autobots.sandbox._common import (
    EXIT_TIMEOUT,
    BackendKind,
    BoundedOutput,
    Outcome,
    interpreter_for,
    timeout_message,
    unsupported_language_message,
    write_code_file,
)
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor
from autogen_ext.code_executors._common import CommandLineCodeResult

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

    `stop()` releases what the run holds in its backend (the docker container) through the
    manager; the workspace stays. `start()` is cheap: resources are acquired on first execution.

    Args:
        runner: The backend runner bound to the run's workspace.
        run_id: The run this executor belongs to.
        timeout_s: Time budget of one `execute_code_blocks` call, in seconds.
        output_limit: Maximum bytes of output kept.
        release: Called by `stop()`; the manager's `release(run_id)`.
        track: Called before each execution so the manager knows the runner holds resources.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        run_id: str,
        timeout_s: float,
        output_limit: int,
        release: Callable[[str], Awaitable[None]],
        track: Callable[[str, Runner], None],
    ) -> None:
        self._runner = runner
        self.run_id = run_id
        self.timeout_s = timeout_s
        self._output_limit = output_limit
        self._release = release
        self._track = track
        self._lock = asyncio.Lock()

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
        """
        async with self._lock:
            return await self._execute(code_blocks, cancellation_token)

    async def _execute(self, code_blocks: list[CodeBlock], token: CancellationToken) -> CommandLineCodeResult:
        if token.is_cancelled():
            raise asyncio.CancelledError("code execution cancelled")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        output = BoundedOutput(self._output_limit)
        exit_code, code_file = 0, None
        self._track(self.run_id, self._runner)
        await self._runner.prepare()
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
            outcome = await self._runner.run(
                [interpreter, code_file],
                timeout_s=deadline - loop.time(),
                output=output,
                cancellation_token=token,
            )
            if outcome.cancelled:
                raise asyncio.CancelledError("code execution cancelled")
            if outcome.timed_out:
                text = output.text().rstrip("\n")
                text = f"{text}\n{timeout_message(self.timeout_s)}" if text else timeout_message(self.timeout_s)
                return CommandLineCodeResult(exit_code=EXIT_TIMEOUT, output=text, code_file=code_file)
            exit_code = outcome.exit_code
            if exit_code != 0:
                break
        return CommandLineCodeResult(exit_code=exit_code, output=output.text(), code_file=code_file)

    async def start(self) -> None:
        """Nothing to do: the backend is acquired lazily on the first execution."""

    async def stop(self) -> None:
        """Releases the run's backend resources (its container); the workspace stays."""
        await self._release(self.run_id)

    async def restart(self) -> None:
        """Drops the run's container (if any); the next execution gets a fresh one."""
        await self.stop()
        await self.start()
