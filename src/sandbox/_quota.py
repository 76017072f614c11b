"""The run workspace's disk quota: measuring a workspace and taking back what an execution wrote past it.

No backend gives a bind-mounted host directory a size limit of its own (that takes a filesystem per run:
a loop device, XFS project quotas, root), so the quota is enforced from the host, the same way for every
backend:

- RLIMIT_FSIZE is the quota, so no single file can outgrow it (python gets EFBIG, a shell dies of SIGXFSZ);
- while an execution runs, the workspace is measured every `POLL_S` (less often for a workspace slow to
  walk) and the execution is killed as soon as it is over the quota;
- when it has ended, the workspace is measured once more; if it is over, the files and directories the
  execution created or changed (their ctime, which code cannot set back, is past its start) are removed,
  largest first, until it is not, and the execution fails with exit code 122 and a message naming them.

So a workspace is within its quota whenever no execution runs, and at most a poll interval's worth of writes
over it while one does. Every entry counts for at least `ENTRY_BYTES`, so a flood of empty files (inodes) is
bounded too. Everything here works on directory descriptors opened with O_NOFOLLOW: the workspace is the
sandbox's, and nothing it planted is followed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autobots.sandbox._common import CODE_DIR, MIB

POLL_S = 0.25
"""How often a running execution's workspace is measured (at least ten times its walk's duration)."""
ENTRY_BYTES = 4096
"""What the smallest entry costs (an inode and a directory slot), whatever its own size."""
# Time stamps come from a coarse clock that may lag the one the execution's start is read from.
_CLOCK_SLACK_NS = 50_000_000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Entry:
    parts: tuple[str, ...]
    size: int
    is_dir: bool
    changed_ns: int


@dataclass
class Usage:
    """A workspace's size and, for trimming, its entries changed since a point in time."""

    total: int = 0
    changed: list[_Entry] = field(default_factory=list)


def measure(workspace: Path, *, changed_since_ns: int | None = None) -> Usage:
    """The bytes `workspace` takes (hard links once), plus its entries changed since `changed_since_ns`."""
    usage = Usage()
    seen: set[tuple[int, int]] = set()
    since = None if changed_since_ns is None else changed_since_ns - _CLOCK_SLACK_NS
    try:
        walk = os.fwalk(workspace, follow_symlinks=False)
        for root, dirs, files, root_fd in walk:
            parts = Path(root).relative_to(workspace).parts
            for name in dirs + files:
                try:
                    info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
                except OSError:
                    continue
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if (info.st_dev, info.st_ino) in seen:
                        continue
                    seen.add((info.st_dev, info.st_ino))
                size = max(info.st_blocks * 512, ENTRY_BYTES)
                usage.total += size
                if since is not None and info.st_ctime_ns >= since and not stat.S_ISSOCK(info.st_mode):
                    usage.changed.append(_Entry((*parts, name), size, stat.S_ISDIR(info.st_mode),
                                                info.st_ctime_ns))
    except OSError:
        pass
    return usage


def trim(workspace: Path, usage: Usage, limit: int) -> list[str]:
    """Removes entries of `usage.changed`, largest files first, until the workspace is within `limit` bytes;
    then the directories among them left empty (but the code directory). Returns the removed files' paths
    (relative, sorted)."""
    total = usage.total
    removed: list[str] = []
    for entry in sorted((e for e in usage.changed if not e.is_dir), key=lambda e: e.size, reverse=True):
        if total <= limit:
            break
        if _remove(workspace, entry.parts, directory=False):
            total -= entry.size
            removed.append("/".join(entry.parts))
    # Deepest first, so that a tree of new directories goes from the leaves up (a non-empty one stays).
    for entry in sorted((e for e in usage.changed if e.is_dir), key=lambda e: len(e.parts), reverse=True):
        if entry.parts != (CODE_DIR,):
            _remove(workspace, entry.parts, directory=True)
    return sorted(removed)


def describe(used: int, limit: int, removed: list[str]) -> str:
    """The line an execution that went over the quota ends its output with."""
    text = f"[workspace quota exceeded: the run's files took {used / MIB:.1f} MiB of its {limit / MIB:g} MiB"
    if removed:
        shown = ", ".join(removed[:10]) + (f" and {len(removed) - 10} more" if len(removed) > 10 else "")
        text += f"; removed what this execution wrote: {shown}"
    return text + "]"


def _remove(workspace: Path, parts: tuple[str, ...], *, directory: bool) -> bool:
    """Unlinks (or rmdirs) `parts` under `workspace`, reaching its parent without following any symlink."""
    try:
        fd = os.open(workspace, _DIR_FLAGS)
    except OSError:
        return False
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        if directory:
            os.rmdir(parts[-1], dir_fd=fd)
        else:
            os.unlink(parts[-1], dir_fd=fd)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
