"""Finished runs' workspaces: kept for the retention period (files readable), then swept; never while in use."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from autobots.errors import InvalidRequest
from autobots.sandbox import SandboxManager
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from tests.support.sandbox import StartManager

DAY_S = 24 * 3600


async def local_manager(start_manager: StartManager, **overrides: object) -> SandboxManager:
    """A manager on the `local` backend: retention does not depend on the backend, and local is always there."""
    manager = await start_manager(sandbox="local", **overrides)
    assert manager.choice.kind == "local"
    return manager


async def finish_run(manager: SandboxManager, run_id: str) -> None:
    """Runs one execution that leaves a file in the run's workspace, then releases the run (as its end does)."""
    executor = await manager.open_executor(run_id=run_id)
    result = await executor.execute_code_blocks([CodeBlock("open('out.txt', 'w').write('hi')", "python")],
                                                CancellationToken())
    assert result.exit_code == 0
    await executor.stop()


def last_used(root: Path, run_id: str, *, seconds_ago: float) -> None:
    """Pretends the run last used its workspace `seconds_ago`."""
    stamp = time.time() - seconds_ago
    os.utime(root / ".leases" / run_id, (stamp, stamp))


class TestRetention:
    async def test_a_finished_runs_files_stay_for_the_retention_period(
        self, start_manager: StartManager, workspace_root: Path
    ) -> None:
        manager = await local_manager(start_manager)
        await finish_run(manager, "recent")
        last_used(workspace_root, "recent", seconds_ago=DAY_S - 60)
        assert await manager.sweep_workspaces() == []
        assert [f["path"] for f in manager.list_files("recent")] == ["out.txt"]
        assert manager.read_file("recent", "out.txt") == b"hi"

    async def test_a_finished_run_past_the_retention_is_swept(
        self, start_manager: StartManager, workspace_root: Path
    ) -> None:
        manager = await local_manager(start_manager)
        await finish_run(manager, "old")
        await finish_run(manager, "recent")
        last_used(workspace_root, "old", seconds_ago=DAY_S + 60)
        assert await manager.sweep_workspaces() == ["old"]
        assert manager.list_files("old") == []
        assert sorted(os.listdir(workspace_root)) == [".leases", ".trash", "recent"]
        assert os.listdir(workspace_root / ".trash") == []
        assert os.listdir(workspace_root / ".leases") == ["recent"]

    async def test_a_run_in_use_is_never_swept(self, start_manager: StartManager, workspace_root: Path) -> None:
        worker = await local_manager(start_manager)
        executor = await worker.open_executor(run_id="live")
        result = await executor.execute_code_blocks([CodeBlock("open('out.txt', 'w').write('hi')", "python")],
                                                    CancellationToken())
        assert result.exit_code == 0
        last_used(workspace_root, "live", seconds_ago=10 * DAY_S)
        # Another process of the service (another run worker, the API process) sweeps the same root.
        other = await local_manager(start_manager)
        assert await other.sweep_workspaces() == []
        assert await worker.sweep_workspaces() == []
        assert [f["path"] for f in other.list_files("live")] == ["out.txt"]
        # Released, the run counts as used now: its files are kept for a whole retention period.
        await executor.stop()
        assert await other.sweep_workspaces() == []
        assert other.read_file("live", "out.txt") == b"hi"

    async def test_a_workspace_without_a_lease_is_kept_a_whole_retention_period(
        self, start_manager: StartManager, workspace_root: Path
    ) -> None:
        legacy = workspace_root / "legacy"
        legacy.mkdir()
        (legacy / "data.csv").write_text("a,b\n")
        old = time.time() - 10 * DAY_S
        os.utime(legacy, (old, old))
        manager = await local_manager(start_manager, sandbox_workspace_retention_hours=1)
        assert await manager.sweep_workspaces() == []
        assert manager.read_file("legacy", "data.csv") == b"a,b\n"
        last_used(workspace_root, "legacy", seconds_ago=3600 + 60)
        assert await manager.sweep_workspaces() == ["legacy"]
        assert not legacy.exists()

    async def test_a_sweep_does_not_follow_symlinks(self, start_manager: StartManager, workspace_root: Path,
                                                    tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "precious.txt").write_text("keep me")
        manager = await local_manager(start_manager)
        executor = await manager.open_executor(run_id="planted")
        code = f"import os\nos.symlink({str(outside)!r}, 'link')\nos.symlink({str(outside / 'precious.txt')!r}, 'f')"
        result = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
        assert result.exit_code == 0
        await executor.stop()
        last_used(workspace_root, "planted", seconds_ago=DAY_S + 60)
        assert await manager.sweep_workspaces() == ["planted"]
        assert (outside / "precious.txt").read_text() == "keep me"

    async def test_a_retention_of_zero_keeps_workspaces(self, start_manager: StartManager,
                                                        workspace_root: Path) -> None:
        manager = await local_manager(start_manager, sandbox_workspace_retention_hours=0)
        await finish_run(manager, "forever")
        last_used(workspace_root, "forever", seconds_ago=1000 * DAY_S)
        assert await manager.sweep_workspaces() == []
        assert manager.read_file("forever", "out.txt") == b"hi"

    async def test_a_starting_manager_sweeps(self, start_manager: StartManager, workspace_root: Path) -> None:
        first = await local_manager(start_manager)
        await finish_run(first, "stale")
        last_used(workspace_root, "stale", seconds_ago=DAY_S + 60)
        second = await local_manager(start_manager)
        assert not (workspace_root / "stale").exists()
        assert second.list_files("stale") == []


@pytest.mark.parametrize("run_id", [".leases", ".trash", ".uids"])
async def test_the_services_own_directories_are_no_run(start_manager: StartManager, run_id: str) -> None:
    manager = await local_manager(start_manager)
    with pytest.raises(InvalidRequest):
        manager.workspace_path(run_id)
