"""The sandbox agent: the first process of a run's sandbox, which runs the executions the host hands it.

This file is the source of that process (`python3 -c <this file>`): PID 1 of a docker sandbox container, or
PID 1 of the pid namespace of a run's resident bubblewrap sandbox. It runs inside the sandbox as the sandbox
user, never in the service, and uses the standard library only (the image's python may be minimal).

Why: a `docker exec` costs a round trip through the engine, containerd and runc (about 50-80 ms here), and a
fresh bubblewrap sandbox per execution costs its namespaces and mounts; an execution handed to a process
already running in the sandbox costs a fork and the interpreter's start.

Protocol, one connection per execution on the unix socket `/workspace/.autobots/agent.sock` (the host reaches
it through the bound workspace directory). The host sends one request: a 4-byte big-endian length, then the
NUL-separated fields `limit-in-seconds, argv...`. The agent starts argv in /workspace with stdout and stderr
on one pipe (so the output keeps its order) and answers with frames of one kind byte, a 4-byte big-endian
length and the payload: `o` output bytes, then `x` the exit status (4-byte signed; 128 + signal when the code
was killed); or only `e` and the reason when the code could not be started at all (fork failed: the host
retries, and never shows this as the code's output). Once the code has exited, every other process of the
sandbox user is killed with kill(-1), which spares the caller (and the kernel shields PID 1 from its namespace
anyway), before the exit frame is sent: nothing an execution starts outlives it. The host closing its side (or
sending anything) kills the execution the same way; that is how the host's watchdog stops it. Past `limit`
seconds the agent kills it itself (status 137), a backstop behind the host's own timeout. As PID 1 the agent
also reaps orphans, so killed processes do not linger as zombies that count against the process limit.

The code runs as the same uid as the agent and could replace the socket; it would only fool its own run,
whose sandbox is its own. When the socket cannot be served (no pidfd support, a workspace the agent cannot
write), the agent only reaps, and the host runs each execution the slower way (`docker exec`, or a fresh
bubblewrap sandbox).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time

SOCKET_PATH = "/workspace/.autobots/agent.sock"
SIGNALLED = 128
CHUNK = 65536
REQUEST_LIMIT = 1 << 20
DRAIN_S = 2.0


def reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def kill_all() -> None:
    for _ in range(2):
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)


def frame(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack(">I", len(payload)) + payload


def read_request(conn: socket.socket) -> tuple[float, list[str]] | None:
    conn.settimeout(5)
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = conn.recv(CHUNK)
        if not chunk or len(data) > REQUEST_LIMIT:
            return None
        data += chunk
    conn.settimeout(None)
    limit, *argv = data[4:].decode().split("\0")
    return float(limit), argv


def run(conn: socket.socket, argv: list[str], limit: float) -> None:
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(argv, cwd="/workspace", stdin=subprocess.DEVNULL, stdout=write_end,
                                 stderr=write_end, start_new_session=True)
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        conn.sendall(frame(b"e", f"the sandbox agent could not start the code: {exc}".encode()))
        return
    os.close(write_end)
    pidfd = os.pidfd_open(child.pid)
    events = selectors.DefaultSelector()
    events.register(read_end, selectors.EVENT_READ, "output")
    events.register(pidfd, selectors.EVENT_READ, "exited")
    events.register(conn, selectors.EVENT_READ, "host")
    deadline = time.monotonic() + limit
    status = None
    try:
        while status is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kill_all()
            for key, _ in events.select(max(remaining, 0.05)):
                if key.data == "output":
                    chunk = os.read(read_end, CHUNK)
                    if chunk:
                        conn.sendall(frame(b"o", chunk))
                    else:
                        events.unregister(read_end)
                elif key.data == "exited":
                    status = child.wait()
                else:
                    kill_all()
                    status = child.wait()
        kill_all()
        # What the killed processes wrote before they died; only the output pipe is watched from here on.
        events.unregister(pidfd)
        events.unregister(conn)
        drain_until = time.monotonic() + DRAIN_S
        while read_end in events.get_map() and time.monotonic() < drain_until:
            if events.select(drain_until - time.monotonic()):
                chunk = os.read(read_end, CHUNK)
                if not chunk:
                    break
                conn.sendall(frame(b"o", chunk))
        code = status if status >= 0 else SIGNALLED - status
        conn.sendall(frame(b"x", struct.pack(">i", code)))
    finally:
        kill_all()
        if child.returncode is None:
            child.wait()
        events.close()
        os.close(read_end)
        os.close(pidfd)
        reap()


def serve(conn: socket.socket) -> None:
    try:
        request = read_request(conn)
        if request is not None:
            run(conn, request[1], request[0])
    except Exception as exc:
        print(f"autobots agent: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        conn.close()


def listen() -> socket.socket | None:
    if not hasattr(os, "pidfd_open"):
        print("autobots agent: not serving executions: no pidfd support (Python 3.9+)", file=sys.stderr, flush=True)
        return None
    try:
        os.makedirs(os.path.dirname(SOCKET_PATH), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(SOCKET_PATH)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(SOCKET_PATH)
        os.chmod(SOCKET_PATH, 0o600)
        listener.listen(8)
        return listener
    except OSError as exc:
        print(f"autobots agent: not serving executions: {exc}", file=sys.stderr, flush=True)
        return None


def main() -> None:
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_read, False)
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    events = selectors.DefaultSelector()
    events.register(wakeup_read, selectors.EVENT_READ, "child")
    listener = listen()
    if listener is not None:
        events.register(listener, selectors.EVENT_READ, "host")
    while True:
        for key, _ in events.select(5):
            if key.data == "host":
                with contextlib.suppress(OSError):
                    serve(listener.accept()[0])
            else:
                with contextlib.suppress(BlockingIOError):
                    os.read(wakeup_read, CHUNK)
        reap()


if __name__ == "__main__":
    main()
