"""Real `python -m autobots serve` processes on free loopback ports, for end-to-end tests and benchmarks.

A server's settings come only from AUTOBOTS_* variables: its environment drops every setting and model key
inherited from the caller, and AUTOBOTS_CONFIG names a file that does not exist in its temporary working
directory, so no `config.json` is picked up.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.database import session_postgres_url

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Settings the callers choose; anything inherited from the caller's environment is dropped first.
_INHERITED_PREFIXES = ("AUTOBOTS_", "OPENAI_", "AZURE_OPENAI_", "ANTHROPIC_")


class ServerNotReady(AssertionError):
    """The server exited during startup or did not answer /healthz in time (the message has its log's end)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without inherited settings or model keys, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env.update(overrides)
    return env


def server_env(workdir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a test server or CLI process: the test defaults below, then `overrides`.

    Local auth, the explicitly chosen `local` sandbox without a warm pool and a workspace root in `workdir`,
    short limits, and no model retries.
    """
    return clean_env(**{
        "AUTOBOTS_DATABASE_URL": database_url,
        "AUTOBOTS_AUTH_MODE": "local",
        "AUTOBOTS_SANDBOX": "local",
        "AUTOBOTS_SANDBOX_POOL_SIZE": "0",
        "AUTOBOTS_SANDBOX_WORKSPACE_ROOT": str(workdir / "workspaces"),
        "AUTOBOTS_SANDBOX_DEFAULT_TIMEOUT_S": "20",
        "AUTOBOTS_RUN_MAX_SECONDS": "60",
        "AUTOBOTS_MODEL_MAX_RETRIES": "0",
        "AUTOBOTS_MODEL_TIMEOUT_S": "20",
        "AUTOBOTS_CONFIG": str(workdir / "config.json"),  # does not exist: env vars and defaults only
        "PYTHONUNBUFFERED": "1",
        **overrides,
    })


def database_for(root: Path, name: str, postgres: bool) -> str:
    """The database of the server `name` under `root`: the session's PostgreSQL one, or a SQLite file of its own."""
    return session_postgres_url() if postgres else f"sqlite:///{root / name / 'autobots.sqlite'}"


@dataclass
class ServerProcess:
    """A started server: its URL, process, environment (for CLI calls) and log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    workdir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        returncode = self.process.returncode
        assert returncode is not None, "the server process did not exit"
        return returncode


def start_server(workdir: Path, env: dict[str, str], *, port: int) -> ServerProcess:
    """Start `python -m autobots serve` in `workdir` with exactly `env` (which sets AUTOBOTS_PORT to `port`),
    its output going to `workdir/server.log`, without waiting for it."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "autobots", "serve"], cwd=workdir, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(f"http://127.0.0.1:{port}", process, env, workdir, log_path)


def launch_server(workdir: Path, database_url: str, **overrides: str) -> ServerProcess:
    """Start a test server (`server_env`) on a free port without waiting for it."""
    port = free_port()
    return start_server(workdir, server_env(workdir, database_url, AUTOBOTS_PORT=str(port), **overrides), port=port)


def wait_ready(server: ServerProcess, timeout_s: float = START_TIMEOUT_S) -> ServerProcess:
    """Wait until /healthz answers; raise `ServerNotReady` with the server's log if it exits or takes too long
    (then it is stopped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerNotReady(f"the server exited with {server.process.returncode} during startup:\n"
                                 f"{server.log()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise ServerNotReady(f"the server did not answer /healthz within {timeout_s} s:\n{server.log()[-4000:]}")


def create_api_keys(server: ServerProcess, *names: str) -> dict[str, str]:
    """A new API key for each of `names`, made with `python -m autobots users add NAME` against the server's
    database (the key is the last line of its output); the commands run at once."""
    procs = {name: subprocess.Popen([sys.executable, "-m", "autobots", "users", "add", name], cwd=server.workdir,
                                    env=server.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in names}
    keys: dict[str, str] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"users add {name} failed ({proc.returncode}):\n{out}\n{err}"
        keys[name] = out.strip().splitlines()[-1].strip()
    return keys


def stop_and_check(server: ServerProcess) -> None:
    """Stop the server and check that it exited cleanly."""
    returncode = server.stop()
    assert server.process.poll() is not None
    # uvicorn exits 0 after a graceful SIGTERM.
    assert returncode in (0, -signal.SIGTERM), f"exit status {returncode}:\n{server.log()[-4000:]}"


def children_of(pid: int) -> list[int]:
    """The pids of the processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


@contextmanager
def killed_mid_run(root: Path, spec: dict[str, Any], content: str,
                   killed_when: Callable[[str, str], bool]) -> Iterator[tuple[ServerProcess, str, str]]:
    """Start a run of `spec` on a server, SIGKILL it once `killed_when(base_url, run_id)` holds, and yield a
    second server on the same database (with the session and run ids) that resumes it; stopped afterwards."""
    database = f"sqlite:///{root / 'db.sqlite'}"
    first = wait_ready(launch_server(root / "first", database))
    try:
        session = httpx.post(f"{first.base_url}/api/v1/sessions", json={"workflow": spec}).json()
        run = httpx.post(f"{first.base_url}/api/v1/sessions/{session['id']}/messages",
                         json={"content": content}).json()["run"]
        deadline = time.monotonic() + 30
        while not killed_when(first.base_url, run["id"]):
            assert time.monotonic() < deadline, "the run never reached the point to kill it at"
            time.sleep(0.05)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=20)
    finally:
        first.stop()
    second = wait_ready(launch_server(root / "second", database))
    try:
        yield second, session["id"], run["id"]
    finally:
        second.stop()
