"""Host uids of the process backend: one per run, never shared between the service's processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from autobots.sandbox import SandboxError
from autobots.sandbox._uids import UidAllocator, uids_with_processes
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from tests.support.sandbox import Require, StartManager

# Far from the service's own range, so that tests never meet a sandbox of a service running on this host.
BASE = 3_900_000

HOLD_UIDS = """import sys
from pathlib import Path
from autobots.sandbox._uids import UidAllocator

allocator = UidAllocator(Path(sys.argv[1]), base=int(sys.argv[2]), count=int(sys.argv[3]))
leases = [allocator.acquire() for _ in range(int(sys.argv[4]))]
print(" ".join(str(lease.uid) for lease in leases), flush=True)
sys.stdin.read()
"""

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="sandboxes get uids of their own only when root")


def hold_uids(directory: Path, *, count: int, take: int) -> subprocess.Popen[str]:
    """A separate process (as a run worker is) that takes `take` uids and holds them until its stdin closes."""
    return subprocess.Popen([sys.executable, "-c", HOLD_UIDS, str(directory), str(BASE), str(count), str(take)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def uids_held_by(process: subprocess.Popen[str]) -> set[int]:
    assert process.stdout is not None
    return {int(uid) for uid in process.stdout.readline().split()}


class TestUidAllocator:
    def test_two_allocators_never_hand_out_the_same_uid(self, tmp_path: Path) -> None:
        first, second = UidAllocator(tmp_path, base=BASE, count=16), UidAllocator(tmp_path, base=BASE, count=16)
        leases = [allocator.acquire() for _ in range(8) for allocator in (first, second)]
        assert sorted(lease.uid for lease in leases) == list(range(BASE, BASE + 16))
        with pytest.raises(SandboxError):
            first.acquire()
        leases[3].release()
        assert second.acquire().uid == leases[3].uid

    def test_allocators_of_separate_processes_never_hand_out_the_same_uid(self, tmp_path: Path) -> None:
        workers = [hold_uids(tmp_path, count=40, take=20) for _ in range(2)]
        try:
            held = [uids_held_by(worker) for worker in workers]
            assert len(held[0]) == len(held[1]) == 20
            assert held[0].isdisjoint(held[1])
            with pytest.raises(SandboxError):
                UidAllocator(tmp_path, base=BASE, count=40).acquire()
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()

    def test_a_uid_is_free_again_once_its_holder_died(self, tmp_path: Path) -> None:
        worker = hold_uids(tmp_path, count=1, take=1)
        try:
            assert uids_held_by(worker) == {BASE}
            with pytest.raises(SandboxError):
                UidAllocator(tmp_path, base=BASE, count=1).acquire()
        finally:
            worker.kill()
            worker.wait()
        assert UidAllocator(tmp_path, base=BASE, count=1).acquire().uid == BASE

    @needs_root
    def test_a_uid_that_still_runs_processes_is_skipped(self, tmp_path: Path) -> None:
        # A sandbox left behind by a process that died: its lock is gone, its processes are not.
        left = subprocess.Popen(["unshare", f"--setgid={BASE}", f"--setuid={BASE}", "--", "sleep", "30"])
        try:
            allocator = UidAllocator(tmp_path, base=BASE, count=2)
            assert eventually(lambda: BASE in uids_with_processes())
            assert allocator.acquire().uid == BASE + 1
            with pytest.raises(SandboxError):
                allocator.acquire()
        finally:
            left.kill()
            left.wait()


@needs_root
@pytest.mark.bwrap
async def test_runs_on_different_workers_get_different_uids(start_manager: StartManager, require: Require) -> None:
    # Two managers on one workspace root are what two run worker processes are.
    workers = [await start_manager(sandbox="process") for _ in range(2)]
    require("process", workers[0].choice.kind == "process", workers[0].choice.reason)
    owners = []
    for index, worker in enumerate(workers):
        executor = await worker.open_executor(run_id=f"run-{index}", timeout_s=5)
        result = await executor.execute_code_blocks([CodeBlock("open('mine.txt', 'w').write('x')", "python")],
                                                    CancellationToken())
        assert result.exit_code == 0
        info = await asyncio.to_thread(os.stat, worker.workspace_path(f"run-{index}") / "mine.txt")
        owners.append(info.st_uid)
    assert owners[0] != owners[1]


def eventually(check: Callable[[], bool], *, tries: int = 100) -> bool:
    for _ in range(tries):
        if check():
            return True
        time.sleep(0.02)
    return False
