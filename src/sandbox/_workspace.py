"""Reading a run's workspace from the host without following anything the sandbox could plant.

Directories and files are opened one component at a time with O_NOFOLLOW, relative to the descriptor of
their parent, so a symlink swapped in by code still running in the sandbox is refused, never followed.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from autobots.errors import NotFound
from autobots.sandbox._common import CODE_DIR

MAX_LIST_DEPTH = 32
"""Directories nested deeper than this are not listed (the listing says it is truncated)."""
MAX_LIST_ENTRIES = 10_000
"""Directory entries (files, directories, anything) a listing looks at before it stops, truncated."""
_NOFOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW


@dataclass
class WorkspaceListing:
    """Regular files of a workspace, sorted by path; `truncated` when a limit stopped the walk first."""

    files: list[dict[str, object]] = field(default_factory=list)
    truncated: bool = False


@dataclass
class WorkspaceFile:
    """An opened regular file of a workspace and its size when opened; close it (or use `with`)."""

    handle: BinaryIO
    size: int
    name: str

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> WorkspaceFile:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def scan_workspace(workspace: Path, *, max_depth: int = MAX_LIST_DEPTH,
                   max_entries: int = MAX_LIST_ENTRIES) -> WorkspaceListing:
    """Regular files under `workspace` (symlinks and the code directory skipped), at most `max_depth`
    directories deep and among the first `max_entries` directory entries seen."""
    try:
        fd = os.open(workspace, _DIRECTORY)
    except OSError:
        return WorkspaceListing()
    walk = _Walk(max_depth, max_entries)
    try:
        walk.directory(fd, "", 0)
    finally:
        os.close(fd)
    return WorkspaceListing(sorted(walk.files, key=lambda f: str(f["path"])), walk.truncated)


class _Walk:
    """Depth-first, one directory descriptor per level: the depth limit bounds both recursion and open files."""

    def __init__(self, max_depth: int, max_entries: int) -> None:
        self.max_depth = max_depth
        self.budget = max_entries
        self.files: list[dict[str, object]] = []
        self.truncated = False

    def directory(self, fd: int, prefix: str, depth: int) -> None:
        subdirectories: list[str] = []
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if self.budget <= 0:
                        self.truncated = True
                        break
                    self.budget -= 1
                    if not _is_utf8(entry.name):
                        continue  # not representable in a JSON listing or a URL path
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISREG(info.st_mode):
                        self.files.append({"path": prefix + entry.name, "size": info.st_size,
                                           "modified_at": int(info.st_mtime)})
                    elif stat.S_ISDIR(info.st_mode) and not (depth == 0 and entry.name == CODE_DIR):
                        subdirectories.append(entry.name)
        except OSError:
            pass  # unreadable, or removed by the running code meanwhile: list what was seen
        if subdirectories and depth >= self.max_depth:
            self.truncated = True
            return
        for name in sorted(subdirectories):
            if self.budget <= 0:
                self.truncated = True
                return
            try:
                child = os.open(name, _DIRECTORY, dir_fd=fd)
            except OSError:
                continue
            try:
                self.directory(child, f"{prefix}{name}/", depth + 1)
            finally:
                os.close(child)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def open_workspace_file(workspace: Path, path: str) -> WorkspaceFile:
    """A regular file inside `workspace`, opened component by component with O_NOFOLLOW.

    Raises:
        NotFound: Missing file, a path leaving the workspace, any symlink on the way, a NUL byte, or not a
            regular file.
    """
    parts = PurePosixPath(path).parts
    if (not parts or "\x00" in path or PurePosixPath(path).is_absolute()
            or any(p in ("..", ".", "") for p in parts)):
        raise _not_found(path)
    try:
        fd = os.open(workspace, _DIRECTORY)
    except OSError:
        raise _not_found(path) from None
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        file_fd = os.open(parts[-1], os.O_RDONLY | os.O_NONBLOCK | _NOFOLLOW, dir_fd=fd)
    except OSError:
        raise _not_found(path) from None
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(file_fd)
        raise _not_found(path)
    return WorkspaceFile(os.fdopen(file_fd, "rb", buffering=0), info.st_size, parts[-1])


def read_workspace_file(workspace: Path, path: str) -> bytes:
    """The whole content of `open_workspace_file(workspace, path)`."""
    with open_workspace_file(workspace, path) as opened:
        return opened.handle.read()


def _not_found(path: str) -> NotFound:
    return NotFound(f"no file {path!r} in this run's workspace", code="file_not_found", param="path")
