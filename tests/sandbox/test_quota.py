"""The run workspace's disk quota, against the real backends (and the host-side accounting on its own)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from autobots.sandbox import _quota
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from tests.support.sandbox import Box, MakeBox

MIB = 1024 * 1024
QUOTA_MB = 8

WRITE_FILES = """import os
os.makedirs('new', exist_ok=True)
for i in range(12):
    with open(f'new/part{i:02}.bin', 'wb') as f:
        f.write(os.urandom(1024 * 1024))
print('done')
"""

WRITE_ONE_BIG_FILE = """import os
try:
    with open('big.bin', 'wb') as f:
        for _ in range(12):
            f.write(os.urandom(1024 * 1024))
            f.flush()
    print('written')
except OSError as exc:
    print('refused:', exc.strerror)
"""

WRITE_FOREVER = """import itertools, os, time
for i in itertools.count():
    with open(f'flood{i}.bin', 'wb') as f:
        f.write(os.urandom(1024 * 1024))
    time.sleep(0.02)
"""


def disk_usage(workspace: Path) -> int:
    """Bytes of the files under `workspace`, as `du` counts them (allocated blocks)."""
    total = 0
    for base, _, names in os.walk(workspace):
        for name in names:
            total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


async def quota_box(make_box: MakeBox) -> Box:
    return await make_box(sandbox_workspace_quota_mb=QUOTA_MB)


async def run(box: Box, code: str, *, timeout_s: int = 10) -> tuple[int, str]:
    executor = await box.executor("quota", timeout_s=timeout_s)
    result = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
    return result.exit_code, result.output


class TestWorkspaceQuota:
    async def test_files_past_the_quota_fail_the_execution_and_are_removed(self, make_box: MakeBox) -> None:
        box = await quota_box(make_box)
        assert await run(box, "open('keep.txt', 'w').write('kept')") == (0, "")
        code, output = await run(box, WRITE_FILES)
        assert code == 122
        head, _, listed = output.partition("; removed what this execution wrote: ")
        assert head.startswith("done\n[workspace quota exceeded: the run's files took ")
        assert head.endswith(f" MiB of its {QUOTA_MB} MiB")
        assert await asyncio.to_thread(disk_usage, box.manager.workspace_path("quota")) <= QUOTA_MB * MIB
        # New files went, largest first, until the rest fit; the earlier file stayed.
        removed = listed.removesuffix("]").split(", ")
        kept = [str(f["path"]) for f in box.manager.list_files("quota")]
        assert sorted(removed + kept) == ["keep.txt", *(f"new/part{i:02}.bin" for i in range(12))]
        assert "keep.txt" in kept and len(removed) >= 4
        assert box.manager.read_file("quota", "keep.txt") == b"kept"

    async def test_a_file_larger_than_the_quota_is_refused(self, make_box: MakeBox) -> None:
        box = await quota_box(make_box)
        code, output = await run(box, WRITE_ONE_BIG_FILE)
        assert code == 122
        assert output.startswith("refused: File too large\n[workspace quota exceeded: ")
        assert output.endswith("removed what this execution wrote: big.bin]")
        assert box.manager.list_files("quota") == []

    async def test_a_writer_that_does_not_stop_is_stopped_at_the_quota(self, make_box: MakeBox) -> None:
        box = await quota_box(make_box)
        started = time.monotonic()
        code, output = await run(box, WRITE_FOREVER, timeout_s=30)
        assert time.monotonic() - started < 10
        assert code == 122
        assert output.startswith("[workspace quota exceeded: ")
        assert await asyncio.to_thread(disk_usage, box.manager.workspace_path("quota")) <= QUOTA_MB * MIB

    async def test_the_run_goes_on_after_the_quota_was_exceeded(self, make_box: MakeBox) -> None:
        box = await quota_box(make_box)
        await run(box, WRITE_FILES)
        code, output = await run(box, "open('after.txt', 'w').write('x')\nprint('fine')")
        assert (code, output) == (0, "fine\n")
        assert box.manager.read_file("quota", "after.txt") == b"x"

    async def test_files_within_the_quota_stay(self, make_box: MakeBox) -> None:
        box = await quota_box(make_box)
        code, output = await run(box, WRITE_FILES.replace("range(12)", "range(5)"))
        assert (code, output) == (0, "done\n")
        assert [f["path"] for f in box.manager.list_files("quota")] == [f"new/part{i:02}.bin" for i in range(5)]


class TestAccounting:
    """`_quota` on a plain directory: what counts, and what trimming may touch."""

    def test_symlinks_are_not_followed(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside.bin"
        outside.write_bytes(os.urandom(2 * MIB))
        workspace = tmp_path / "ws"
        workspace.mkdir()
        started = time.time_ns()
        (workspace / "link").symlink_to(outside)
        (workspace / "dirlink").symlink_to(tmp_path)
        usage = _quota.measure(workspace, changed_since_ns=started)
        assert usage.total == 2 * _quota.ENTRY_BYTES
        assert _quota.trim(workspace, usage, 0) == ["dirlink", "link"]
        assert outside.stat().st_size == 2 * MIB
        assert os.listdir(workspace) == []

    def test_hard_links_count_once_and_empty_files_count(self, tmp_path: Path) -> None:
        (tmp_path / "a.bin").write_bytes(os.urandom(MIB))
        os.link(tmp_path / "a.bin", tmp_path / "b.bin")
        for i in range(100):
            (tmp_path / f"empty{i}").touch()
        assert _quota.measure(tmp_path).total == MIB + 100 * _quota.ENTRY_BYTES

    def test_only_what_changed_since_the_start_is_trimmed(self, tmp_path: Path) -> None:
        (tmp_path / "old.bin").write_bytes(os.urandom(3 * MIB))
        time.sleep(0.1)
        started = time.time_ns()
        (tmp_path / "new").mkdir()
        (tmp_path / "new" / "small.bin").write_bytes(os.urandom(MIB))
        (tmp_path / "new" / "large.bin").write_bytes(os.urandom(2 * MIB))
        # Setting the modification time back does not hide a file: the change time cannot be set.
        os.utime(tmp_path / "new" / "large.bin", (0, 0))
        usage = _quota.measure(tmp_path, changed_since_ns=started)
        assert _quota.trim(tmp_path, usage, 4 * MIB + 16 * _quota.ENTRY_BYTES) == ["new/large.bin"]
        assert sorted(os.listdir(tmp_path)) == ["new", "old.bin"]
        assert _quota.trim(tmp_path, _quota.measure(tmp_path, changed_since_ns=started), 0) == ["new/small.bin"]
        assert os.listdir(tmp_path) == ["old.bin"]
