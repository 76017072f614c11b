"""Pieces every backend shares: languages, code files, bounded output, exit codes, limits, start detection."""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from autobots.config import Settings

BackendKind = Literal["docker", "process", "local"]

EXIT_TIMEOUT = 124
EXIT_CANCELLED = 130
EXIT_QUOTA_EXCEEDED = 122
"""An execution that left the workspace over its quota (122 is EDQUOT, "Disk quota exceeded", on Linux)."""
MIB = 1024 * 1024
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


def tmpfs_bytes(settings: Settings) -> int:
    """Size of the sandbox's /tmp and of its /dev/shm, each: `sandbox_tmpfs_mb`, never more than the memory limit."""
    return min(settings.sandbox_tmpfs_mb, settings.sandbox_memory_mb) * MIB


def quota_bytes(settings: Settings) -> int:
    """The run workspace's disk quota; also the largest file the sandbox may write (RLIMIT_FSIZE)."""
    return settings.sandbox_workspace_quota_mb * MIB


def unsupported_language_message(language: str) -> str:
    return f"unsupported language {language!r}; supported: {', '.join(SUPPORTED_LANGUAGES)}"


def timeout_message(timeout_s: float) -> str:
    return f"[timed out after {timeout_s:g} s]"


class OutputSink(Protocol):
    """Where a running command's output bytes go."""

    def feed(self, chunk: bytes) -> None: ...


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


START_ATTEMPTS = 3
"""How many times starting the code (or a sandbox container) is tried before the execution fails with a
`SandboxError`: such failures are mostly transient (a uid or container at its process limit for a moment)."""


def start_backoff_s(attempt: int) -> float:
    """The pause before try `attempt + 1` (0.25 s, then 0.5 s, ...)."""
    return 0.25 * 2 ** attempt


STARTED = b"\x01autobots: code started\x02"
"""What a sandbox writes first on the output pipe once it is set up, right before it starts the code.

Whatever comes before it is the sandbox's own (bubblewrap's or docker's error), never the code's: the code
cannot write before it runs. `START_SHIM` prints it and then execs the code's command."""
START_SHIM = ["sh", "-c", "printf '\\001autobots: code started\\002'; exec \"$@\"", "sh"]
_PREAMBLE_LIMIT = 4096


class StartGate:
    """Output of a sandbox that announces the code's start with `STARTED`: what comes before it is held back
    (the sandbox's own messages), what comes after goes to `output`.

    Fed by one producer at a time (the event loop, or a docker stream thread).

    Args:
        output: Where the code's output goes.
    """

    def __init__(self, output: BoundedOutput) -> None:
        self._output = output
        self._held = b""
        self.started = False

    def feed(self, chunk: bytes) -> None:
        if self.started:
            self._output.feed(chunk)
            return
        held = self._held + chunk
        at = held.find(STARTED)
        if at < 0:
            # Only the tail may still hold the start of a split marker; the head is kept for the error message.
            self._held = held[:_PREAMBLE_LIMIT] + held[max(_PREAMBLE_LIMIT, len(held) - len(STARTED)):]
            return
        self.started = True
        self._held = held[:at]
        rest = held[at + len(STARTED):]
        if rest:
            self._output.feed(rest)

    def preamble(self) -> str:
        """What the sandbox wrote before the code started (its error when it never did)."""
        return self._held[:_PREAMBLE_LIMIT].decode("utf-8", errors="replace").strip()


@dataclass
class Outcome:
    """What one code block's process did; `timed_out` and `cancelled` are decided host-side.

    `start_error` is set when the sandbox failed before the code started (the code did not run, and nothing
    was fed to the output): the reason, for the log and the error that ends the execution if retries fail.
    """

    exit_code: int
    timed_out: bool = False
    cancelled: bool = False
    start_error: str | None = None
