"""Reading a run's workspace from the host without following anything the sandbox could plant."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path, PurePosixPath

from autobots.errors import NotFound
from autobots.sandbox._common import CODE_DIR

_MAX_READ = 64 * 1024 * 1024


def list_workspace_files(workspace: Path) -> list[dict[str, object]]:
    """Regular files under `workspace` (symlinks and the code directory skipped), sorted by path."""
    if not workspace.is_dir():
        return []
    files: list[dict[str, object]] = []
    for base, dirs, names in os.walk(workspace, followlinks=False):
        rel_base = Path(base).relative_to(workspace)
        if rel_base == Path("."):
            dirs[:] = [d for d in dirs if d != CODE_DIR]
        for name in names:
            full = Path(base) / name
            with contextlib.suppress(OSError):
                info = full.lstat()
                if stat.S_ISREG(info.st_mode):
                    files.append({"path": (rel_base / name).as_posix(), "size": info.st_size,
                                  "modified_at": int(info.st_mtime)})
    return sorted(files, key=lambda f: str(f["path"]))


def read_workspace_file(workspace: Path, path: str) -> bytes:
    """The bytes of a regular file inside `workspace`, opened component by component with O_NOFOLLOW.

    Raises:
        NotFound: Missing file, a path leaving the workspace, any symlink on the way, or not a regular file.
    """
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise _not_found(path)
    flags = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | flags)
    except OSError:
        raise _not_found(path) from None
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | flags, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | flags, dir_fd=fd)
    except OSError:
        raise _not_found(path) from None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(file_fd).st_mode):
        os.close(file_fd)
        raise _not_found(path)
    with os.fdopen(file_fd, "rb") as handle:
        return handle.read(_MAX_READ)


def _not_found(path: str) -> NotFound:
    return NotFound(f"no file {path!r} in this run's workspace", code="file_not_found", param="path")
