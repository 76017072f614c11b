"""Sandbox test helpers: a started manager with its backend under test (`Box`), the fixture types of
tests/sandbox/conftest.py, and the skip-or-fail rule for backends this machine lacks."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from autobots.sandbox import SandboxExecutor, SandboxManager
from autobots.sandbox._process import ProcessRunner
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeResult

REQUIRE_ENV = {"docker": "AUTOBOTS_REQUIRE_DOCKER", "process": "AUTOBOTS_REQUIRE_BWRAP"}


@dataclass
class Box:
    """A started manager plus the backend under test, with a one-call way to run code."""

    manager: SandboxManager
    kind: str
    warm: bool = False

    async def executor(self, run_id: str = "run-1", *, timeout_s: int = 2) -> SandboxExecutor:
        """A new executor; when `warm`, one whose resident sandbox is up (process backend), so that the code
        of the test goes through the sandbox agent as a run's later executions do."""
        executor = await self.manager.open_executor(run_id=run_id, kind=self.kind, timeout_s=timeout_s)
        if self.warm:
            await executor.execute_code_blocks([CodeBlock("true", "sh")], CancellationToken())
            runner = executor.runner
            assert isinstance(runner, ProcessRunner) and await runner.resident_ready()
        return executor

    async def run(
        self, code: str, language: str = "python", *, run_id: str = "run-1", timeout_s: int = 2
    ) -> CodeResult:
        executor = await self.executor(run_id, timeout_s=timeout_s)
        return await executor.execute_code_blocks([CodeBlock(code, language)], CancellationToken())


# The types of the `start_manager`, `require` and `make_box` fixtures.
StartManager = Callable[..., Awaitable[SandboxManager]]
Require = Callable[[str, bool, str], None]
MakeBox = Callable[..., Awaitable[Box]]


def require_backend(kind: str, available: bool, reason: str) -> None:
    """Skip the test when `kind` is unusable, or fail it when its AUTOBOTS_REQUIRE_* variable is 1."""
    if available:
        return
    env = REQUIRE_ENV.get(kind)
    message = f"{kind} sandbox unavailable: {reason}"
    if env and os.environ.get(env) == "1":
        pytest.fail(f"{message} (and {env}=1)")
    pytest.skip(message)
