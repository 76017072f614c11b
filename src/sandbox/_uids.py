"""Host uids for the process backend's sandboxes, unique per run across every process of the service.

When the service runs as root, each run's sandbox runs under an unprivileged host uid of its own, because
RLIMIT_NPROC counts the processes of a uid, not of a sandbox: two runs sharing a uid share that limit, and
one run's fork-heavy code makes the other's next sandbox fail to start (`bwrap: Creating new namespace
failed: Resource temporarily unavailable`, clone() hitting RLIMIT_NPROC). Run workers are separate processes,
so a per-process counter handed every worker the same uids.

A uid is taken by locking its file `<directory>/<uid>` (flock, exclusive, non-blocking) and held for as long
as the lock: every process on the host that uses the same workspace root sees it. The kernel drops the lock
when its process dies, so nothing survives a crash; a uid that some process still runs as (a sandbox left by
a process that died) is skipped all the same, so a restart never reuses a uid still in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
from pathlib import Path

from autobots.sandbox._errors import SandboxError

HOST_UID_BASE = 2_100_000
UID_COUNT = 65536


class UidLease:
    """One host uid held by this process until `release()` (or until the process dies)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self._fd: int | None = fd

    def release(self) -> None:
        """Gives the uid back; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class UidAllocator:
    """Hands out host uids from `[base, base + count)`, each to one holder at a time host-wide.

    Args:
        directory: Where the lock files live (created 0700); shared by every process that must not collide.
        base: First uid of the range.
        count: Size of the range.
    """

    def __init__(self, directory: Path, *, base: int = HOST_UID_BASE, count: int = UID_COUNT) -> None:
        self.directory = directory
        self.base = base
        self.count = count
        # Each process starts at a random place, so concurrent allocators rarely contend for the same files.
        self._next = random.randrange(count)
        self._lock = threading.Lock()

    def acquire(self) -> UidLease:
        """A free uid, locked for the caller. Blocking (file locks and a /proc scan): call it in a thread.

        Raises:
            SandboxError: Every uid of the range is held or still has processes.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            start, self._next = self._next, (self._next + 1) % self.count
        busy = uids_with_processes()
        for step in range(self.count):
            offset = (start + step) % self.count
            uid = self.base + offset
            if uid in busy:
                continue
            lease = self._try_lock(uid)
            if lease is None:
                continue
            # Processes may have appeared since the scan (a sandbox of a holder that just released it).
            if uid in uids_with_processes():
                lease.release()
                continue
            with self._lock:
                self._next = (offset + 1) % self.count
            return lease
        raise SandboxError(f"no free sandbox uid in {self.base}..{self.base + self.count - 1}")

    def _try_lock(self, uid: int) -> UidLease | None:
        fd = os.open(self.directory / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return UidLease(uid, fd)


def uids_with_processes() -> set[int]:
    """The real uids (what RLIMIT_NPROC counts by) of every process on the host."""
    uids: set[int] = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{entry.name}/status", "rb") as status:
            for line in status:
                if line.startswith(b"Uid:"):
                    uids.add(int(line.split()[1]))
                    break
    return uids
