"""Keeping finished runs' workspaces for `sandbox_workspace_retention_hours`, then removing them.

Each run has a lease file `<root>/.leases/<run_id>`. A process using the run's workspace (the one executing
the run) holds a shared flock on it, from the run's first executor until the run releases its sandbox, and
sets its mtime when it takes and when it drops it: the mtime is when the run last used its workspace. A sweep
(any process of the service, at start and then periodically) takes the exclusive lock without waiting, so a
workspace in use anywhere on the host is skipped, and removes the workspaces whose lease is older than the
retention: it renames the workspace into `<root>/.trash` and unlinks the lease while it holds the lock;
`empty_trash` deletes the renamed trees later (the slow part, kept off the lock and off startup). A workspace
with no lease yet (one from before leases, or whose process died first) gets one, stamped now, so it is kept
for a whole retention period from then. A process that took a lease the sweep unlinked meanwhile notices (the
path no longer names the inode it locked) and takes a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

LEASE_DIR = ".leases"
TRASH_DIR = ".trash"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
"""A run id that can name a workspace: no path separators, and never a hidden name like the service's own."""
_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


class RunLease:
    """A shared lock on one run's lease file: its workspace is in use by this process until `release()`."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def release(self) -> None:
        """Stamps the lease (the run's last use of its workspace) and unlocks it; idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.utime(fd)
            os.close(fd)


def take_lease(root: Path, run_id: str, *, wait: bool = True) -> RunLease | None:
    """Locks the run's lease (shared). Blocking while a sweep holds it, unless `wait` is false (then None).

    A sweep holds a lease for a rename and an unlink only, so the wait is short; call it in a thread anyway.
    """
    directory = _lease_dir(root)
    operation = fcntl.LOCK_SH if wait else fcntl.LOCK_SH | fcntl.LOCK_NB
    while True:
        fd = os.open(directory / run_id, _FLAGS, 0o600)
        try:
            fcntl.flock(fd, operation)
            if _still_linked(directory / run_id, fd):
                os.utime(fd)
                return RunLease(fd)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def sweep(root: Path, *, retention_s: float, now: float | None = None) -> list[str]:
    """Moves the workspaces of runs not in use and last used more than `retention_s` ago to the trash (out of
    reach of the API at once) and removes their leases; `empty_trash` deletes them.

    Blocking: call it in a thread. Returns the swept runs' ids.
    """
    now = time.time() if now is None else now
    directory = _lease_dir(root)
    trash = root / TRASH_DIR
    trash.mkdir(mode=0o700, exist_ok=True)
    removed: list[str] = []
    names = {entry.name for entry in os.scandir(root) if RUN_ID.fullmatch(entry.name)}
    names |= {entry.name for entry in os.scandir(directory) if RUN_ID.fullmatch(entry.name)}
    for name in sorted(names):
        with contextlib.suppress(OSError):
            if _sweep_one(root, directory, trash, name, cutoff=now - retention_s):
                removed.append(name)
    return removed


def _sweep_one(root: Path, directory: Path, trash: Path, name: str, *, cutoff: float) -> bool:
    fd = os.open(directory / name, _FLAGS, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        if not _still_linked(directory / name, fd) or os.fstat(fd).st_mtime > cutoff:
            return False
        workspace = root / name
        if workspace.is_dir() and not workspace.is_symlink():
            workspace.rename(trash / f"{name}.{uuid.uuid4().hex}")
        (directory / name).unlink()
        return True
    finally:
        os.close(fd)


def empty_trash(root: Path) -> None:
    """Deletes the swept workspaces (also what a sweep or a process that died left there). Blocking."""
    trash = root / TRASH_DIR
    if not trash.is_dir():
        return
    for entry in os.scandir(trash):
        # rmtree works on directory descriptors and does not follow symlinks (avoids_symlink_attacks).
        shutil.rmtree(entry.path, ignore_errors=True)
        if os.path.lexists(entry.path):
            logger.warning("could not remove all of the swept workspace %s", entry.path)


def _lease_dir(root: Path) -> Path:
    directory = root / LEASE_DIR
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def _still_linked(path: Path, fd: int) -> bool:
    """Whether `path` still names the file open as `fd` (a sweep may have unlinked it before we locked it)."""
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
