"""Process-backend only: a run's resident bubblewrap sandbox and its agent."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from autobots.sandbox import SandboxExecutor, SandboxManager
from autobots.sandbox._process import ProcessRunner
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeResult

if TYPE_CHECKING:
    from tests.support.sandbox import Require, StartManager

pytestmark = pytest.mark.bwrap


@pytest.fixture
async def manager(start_manager: StartManager, require: Require) -> SandboxManager:
    manager = await start_manager(sandbox="process")
    require("process", manager.choice.kind == "process", manager.choice.reason)
    return manager


def runner_of(executor: SandboxExecutor) -> ProcessRunner:
    runner = executor.runner
    assert isinstance(runner, ProcessRunner)
    return runner


async def run(executor: SandboxExecutor, code: str, language: str = "python") -> CodeResult:
    return await executor.execute_code_blocks([CodeBlock(code, language)], CancellationToken())


PARENT = "import os\nprint(os.getppid())"


async def test_a_runs_first_execution_does_not_wait_for_its_resident_sandbox(manager: SandboxManager) -> None:
    executor = await manager.open_executor(run_id="resident", timeout_s=10)
    first = await run(executor, "print('first')")
    assert (first.exit_code, first.output) == (0, "first\n")
    runner = runner_of(executor)
    assert (runner.executions_by_agent, runner.executions_by_sandbox) == (0, 1)
    assert await runner.resident_ready()
    later = await run(executor, PARENT)
    assert (later.exit_code, later.output) == (0, "1\n")  # started by the agent, PID 1 of the sandbox
    assert (runner.executions_by_agent, runner.executions_by_sandbox) == (1, 1)


async def test_executions_through_the_agent_share_the_workspace_and_tmp(manager: SandboxManager) -> None:
    executor = await manager.open_executor(run_id="shared", timeout_s=10)
    await run(executor, "true", "sh")
    assert await runner_of(executor).resident_ready()
    await run(executor, "echo a > /tmp/t; echo b > w.txt", "sh")
    both = await run(executor, "cat /tmp/t w.txt", "sh")
    assert (both.exit_code, both.output) == (0, "a\nb\n")
    assert runner_of(executor).executions_by_agent == 2


async def test_a_removed_agent_socket_costs_one_fresh_sandbox_then_a_new_resident_one(
    manager: SandboxManager,
) -> None:
    executor = await manager.open_executor(run_id="socket-gone", timeout_s=10)
    await run(executor, "true", "sh")
    runner = runner_of(executor)
    assert await runner.resident_ready()
    removed = await run(executor, "import os\nos.unlink('.autobots/agent.sock')\nprint('removed')")
    assert (removed.exit_code, removed.output) == (0, "removed\n")
    fallback = await run(executor, "print('still here')")
    assert (fallback.exit_code, fallback.output) == (0, "still here\n")
    assert await runner.resident_ready()
    again = await run(executor, PARENT)
    assert (again.exit_code, again.output) == (0, "1\n")
    assert (runner.executions_by_agent, runner.executions_by_sandbox) == (2, 2)


async def test_releasing_the_run_stops_its_resident_sandbox(manager: SandboxManager) -> None:
    executor = await manager.open_executor(run_id="released", timeout_s=10)
    await run(executor, "true", "sh")
    runner = runner_of(executor)
    assert await runner.resident_ready()
    resident = runner._resident
    assert resident is not None
    await manager.release("released")
    assert resident.poll() is not None
    assert not await runner.resident_ready()


async def test_a_timed_out_execution_takes_its_leftovers_down_but_not_the_run(manager: SandboxManager) -> None:
    executor = await manager.open_executor(run_id="timeout", timeout_s=2)
    await run(executor, "true", "sh")
    assert await runner_of(executor).resident_ready()
    timed_out = await run(executor, "sleep 30 &\nsleep 30", "sh")
    assert timed_out.exit_code == 124
    await asyncio.sleep(0.2)
    count = await run(executor, "import os\nprint(sorted(p for p in os.listdir('/proc') if p.isdigit()) == ['1', "
                                "str(os.getpid())])")
    assert (count.exit_code, count.output) == (0, "True\n")
