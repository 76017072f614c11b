"""The host side of the sandbox agent (`_agent_script.py`): finding its socket and running executions through it.

The socket lives in the run's workspace, which the sandbox owns: nothing on the way is followed (a symlink
planted as the code directory or as the socket is refused), and the connection goes through a descriptor of
the socket that was checked, not through a path the sandbox could swap meanwhile. Replies are bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import time
from collections.abc import Sequence
from pathlib import Path

from autobots.sandbox._common import BoundedOutput, open_code_dir

AGENT_SCRIPT = Path(__file__).with_name("_agent_script.py").read_text(encoding="utf-8")
"""The agent's source, run in the sandbox as `python3 -c AGENT_SCRIPT`."""
AGENT_SOCKET = "agent.sock"
"""The agent's socket, in the workspace's code directory."""
START_S = 2.0
"""How long a sandbox just started gets for its agent to listen (it takes milliseconds)."""
KILL_SETTLE_S = 1.5
"""How long the agent gets to confirm that it killed an execution."""
# The agent sends output in chunks of 64 KiB; a longer frame means the sandbox is not speaking its protocol.
_MAX_FRAME = 1 << 20
_STOPPED_WITHOUT_STATUS = b"sandbox error: the sandbox agent ended the execution without an exit status\n"


def open_agent_socket(workspace: Path) -> int:
    """An O_PATH descriptor of the agent's socket in `workspace`, reached without following anything.

    Raises:
        OSError: No socket there.
    """
    directory = open_code_dir(workspace)
    try:
        fd = os.open(AGENT_SOCKET, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    finally:
        os.close(directory)
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(AGENT_SOCKET)
    return fd


def remove_agent_socket(workspace: Path) -> None:
    """Removes the socket an earlier sandbox on `workspace` left, so that a socket there means a new agent."""
    with contextlib.suppress(OSError):
        directory = open_code_dir(workspace)
        try:
            os.unlink(AGENT_SOCKET, dir_fd=directory)
        finally:
            os.close(directory)


async def agent_listening(workspace: Path, timeout_s: float = START_S) -> bool:
    """Waits until the agent of the sandbox just started on `workspace` has bound its socket; False if it does
    not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError):
            os.close(open_agent_socket(workspace))
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)


class AgentExecution:
    """One execution handed to a sandbox's agent over its own connection.

    `killed_all` becomes true once the agent has reported the exit status, which it does only after it
    killed every process the execution left. `start_error` is the agent's reason when it could not start the
    code at all (nothing ran; the caller retries).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.killed_all = False
        self.start_error: str | None = None
        self.done: asyncio.Future[int] | None = None

    @classmethod
    async def connect(cls, workspace: Path) -> AgentExecution | None:
        """A connection to the agent of the sandbox on `workspace`, or None when none is listening."""
        try:
            socket_fd = open_agent_socket(workspace)
        except OSError:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{socket_fd}")
            reader, writer = await asyncio.open_unix_connection(sock=sock, limit=_MAX_FRAME)
        except OSError:
            sock.close()
            return None
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(socket_fd)
        return cls(reader, writer)

    def start(self, argv: Sequence[str], *, limit_s: int, output: BoundedOutput) -> asyncio.Future[int]:
        """Sends the execution; the returned future is its exit status, once the output has been fed."""
        self.done = asyncio.ensure_future(self._run(argv, limit_s, output))
        return self.done

    async def _run(self, argv: Sequence[str], limit_s: int, output: BoundedOutput) -> int:
        try:
            request = "\0".join([str(limit_s), *argv]).encode()
            self._writer.write(len(request).to_bytes(4, "big") + request)
            while True:
                header = await self._reader.readexactly(5)
                kind, size = header[:1], int.from_bytes(header[1:], "big")
                if size > _MAX_FRAME or kind not in (b"o", b"x", b"e") or (kind == b"x" and size != 4):
                    output.feed(b"sandbox error: unexpected reply from the sandbox agent\n")
                    return 1
                payload = await self._reader.readexactly(size)
                if kind == b"o":
                    output.feed(payload)
                    continue
                if kind == b"e":
                    self.start_error = payload.decode("utf-8", errors="replace")
                    self.killed_all = True
                    return 1
                self.killed_all = True
                return int.from_bytes(payload, "big", signed=True)
        except (asyncio.IncompleteReadError, OSError, RuntimeError):
            output.feed(_STOPPED_WITHOUT_STATUS)
            return 1
        finally:
            self._writer.close()

    async def stop(self) -> bool:
        """The watchdog's kill: closing our side makes the agent kill every process of the execution and
        answer. True once it has; False if it did not within `KILL_SETTLE_S` (the caller then kills the
        sandbox's processes another way)."""
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.write_eof()
        if self.done is not None:
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(self.done), timeout=KILL_SETTLE_S)
        return self.killed_all
