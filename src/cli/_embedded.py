"""An embedded server for `autobots run` without `--url`: `python -m autobots serve` on a free loopback port with
a temporary SQLite database and workspace, stopped (and its files removed) when the command ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0


class EmbeddedServerError(RuntimeError):
    """The embedded server exited or did not answer /healthz in time; the message ends with its log."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedServerError(f"the embedded server exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise EmbeddedServerError(f"the embedded server did not answer /healthz within {timeout_s:.0f} s:\n"
                              f"{_tail(log_path)}")


def _tail(log_path: Path, chars: int = 4000) -> str:
    return log_path.read_text(encoding="utf-8", errors="replace")[-chars:]


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


@contextmanager
def embedded_server(*, start_timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """Serve on a free loopback port for the duration of the block; yields the base URL.

    The server inherits this process's environment and working directory (so a `config.json` with model
    settings applies), except for its database, workspace root, address and auth mode (`local`: it is
    reachable from loopback only).

    Raises:
        EmbeddedServerError: The server exited during startup or did not become healthy in time.
    """
    with tempfile.TemporaryDirectory(prefix="autobots-run-") as tmp:
        root = Path(tmp)
        port = _free_port()
        env = {**os.environ,
               "AUTOBOTS_DATABASE_URL": f"sqlite:///{root / 'autobots.sqlite'}",
               "AUTOBOTS_SANDBOX_WORKSPACE_ROOT": str(root / "workspaces"),
               "AUTOBOTS_HOST": "127.0.0.1", "AUTOBOTS_PORT": str(port), "AUTOBOTS_AUTH_MODE": "local"}
        log_path = root / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "autobots", "serve", "--host", "127.0.0.1",
                                        "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process, log_path, start_timeout_s)
            yield url
        finally:
            _stop(process)
