"""Pieces every backend shares: languages, code files, bounded output, exit codes."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BackendKind = Literal["docker", "process", "local"]

EXIT_TIMEOUT = 124
EXIT_CANCELLED = 130
CODE_DIR = ".autobots"
"""Workspace subdirectory holding the code files; hidden from `list_files`."""

_LANGUAGES: dict[str, tuple[str, str]] = {
    "python": ("python3", "py"),
    "py": ("python3", "py"),
    "sh": ("sh", "sh"),
    "bash": ("bash", "sh"),
    "shell": ("bash", "sh"),
}
SUPPORTED_LANGUAGES = tuple(sorted(_LANGUAGES))


def interpreter_for(language: str) -> tuple[str, str] | None:
    """(interpreter, file extension) for a code block language, or None when unsupported."""
    return _LANGUAGES.get(language.strip().lower())


def open_code_dir(workspace: Path, *, create: bool = False) -> int:
    """A descriptor of the workspace's code directory (made first when `create`), reached without following a
    symlink: the sandbox owns the workspace and may have planted one there. The caller closes it.

    Raises:
        OSError: No code directory, or something else in its place (a symlink, a file).
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    workspace_fd = os.open(workspace, flags)
    try:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(CODE_DIR, 0o755, dir_fd=workspace_fd)
        return os.open(CODE_DIR, flags, dir_fd=workspace_fd)
    finally:
        os.close(workspace_fd)


def write_code_file(workspace: Path, code: str, extension: str) -> str:
    """Writes `code` under the workspace's code directory; returns its path relative to the workspace.

    Nothing the sandbox may have planted is followed: the directory is opened with `open_code_dir` and the
    file is created new (O_EXCL, O_NOFOLLOW).

    Raises:
        OSError: The code directory is not a directory (something the sandbox put there).
    """
    code_dir_fd = open_code_dir(workspace, create=True)
    name = f"code_{uuid.uuid4().hex[:12]}.{extension}"
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                     dir_fd=code_dir_fd)
    finally:
        os.close(code_dir_fd)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(code)
    return f"{CODE_DIR}/{name}"


def unsupported_language_message(language: str) -> str:
    return f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}"


def timeout_message(timeout_s: float) -> str:
    return f"[timed out after {timeout_s:g} s]"


class BoundedOutput:
    """Collects combined stdout+stderr up to `limit` bytes and discards the rest.

    Thread-safe, so a docker stream reader thread can feed it while the event loop reads it.

    Args:
        limit: Maximum number of bytes kept; everything past it is counted, not stored.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.truncated = False
        self._lock = threading.Lock()

    def feed(self, chunk: bytes) -> None:
        with self._lock:
            room = self.limit - self._size
            if len(chunk) > room:
                self.truncated = True
                chunk = chunk[: max(room, 0)]
            if chunk:
                self._chunks.append(chunk)
                self._size += len(chunk)

    @property
    def full(self) -> bool:
        return self.truncated

    def text(self) -> str:
        with self._lock:
            data = b"".join(self._chunks)
        out = data.decode("utf-8", errors="replace")
        if self.truncated:
            out += f"\n[output truncated at {self.limit} bytes]"
        return out


@dataclass
class Outcome:
    """What one code block's process did; `timed_out` and `cancelled` are decided host-side."""

    exit_code: int
    timed_out: bool = False
    cancelled: bool = False
