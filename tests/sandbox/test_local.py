"""The unsafe `local` backend: explicit opt-in, same timeout and output cap."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import pytest
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from tests.support.sandbox import StartManager


@pytest.fixture(params=["pidfd", "no-pidfd"])
def exit_watch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test with the child's exit watched by a pidfd, and by the worker-thread fallback."""
    if request.param == "no-pidfd":
        monkeypatch.delattr(os, "pidfd_open", raising=False)
    return str(request.param)


class TestLocal:
    async def test_runs_in_workspace(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="local")
        assert (manager.choice.kind, manager.choice.isolated) == ("local", False)
        executor = await manager.open_executor(run_id="loc")
        code = "import os\nprint(os.getcwd())\nopen('f.txt', 'w').write('x')"
        result = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
        assert (result.exit_code, result.output) == (0, f"{manager.workspace_path('loc')}\n")
        assert manager.read_file("loc", "f.txt") == b"x"

    async def test_no_service_environment_leaks(self, start_manager: StartManager, monkeypatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
        manager = await start_manager(sandbox="local")
        executor = await manager.open_executor(run_id="env")
        result = await executor.execute_code_blocks([CodeBlock("env", "sh")], CancellationToken())
        assert "sk-should-not-leak" not in result.output

    async def test_timeout_kills_process_group(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="local")
        executor = await manager.open_executor(run_id="slow", timeout_s=1)
        started = time.monotonic()
        result = await executor.execute_code_blocks([CodeBlock("sleep 30 & sleep 30", "sh")], CancellationToken())
        assert (result.exit_code, result.output) == (124, "[timed out after 1 s]")
        assert time.monotonic() - started < 4

    async def test_exit_code_and_output(self, start_manager: StartManager, exit_watch: str) -> None:
        manager = await start_manager(sandbox="local")
        executor = await manager.open_executor(run_id="exit")
        code = "import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"
        result = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
        assert (result.exit_code, result.output) == (3, "out\nerr\n")

    async def test_background_job_dies_when_the_code_exits(self, start_manager: StartManager, exit_watch: str) -> None:
        manager = await start_manager(sandbox="local")
        executor = await manager.open_executor(run_id="bg")
        code = "(sleep 1; echo late > late.txt) >/dev/null 2>&1 &\necho started"
        result = await executor.execute_code_blocks([CodeBlock(code, "sh")], CancellationToken())
        assert (result.exit_code, result.output) == (0, "started\n")
        await asyncio.sleep(1.5)
        assert not (manager.workspace_path("bg") / "late.txt").exists()

    async def test_timeout_without_pidfd(self, start_manager: StartManager, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delattr(os, "pidfd_open", raising=False)
        manager = await start_manager(sandbox="local")
        executor = await manager.open_executor(run_id="slow", timeout_s=1)
        started = time.monotonic()
        result = await executor.execute_code_blocks([CodeBlock("sleep 30 & sleep 30", "sh")], CancellationToken())
        assert (result.exit_code, result.output) == (124, "[timed out after 1 s]")
        assert time.monotonic() - started < 4
