"""End-to-end fixtures: real `python -m autobots serve` processes on free loopback ports.

Each server gets a temporary working directory (so no `config.json` is picked up) and its settings
through AUTOBOTS_* variables: a temporary SQLite file, or the PostgreSQL database named by
AUTOBOTS_DATABASE_URL (reset once, shared by the servers of the session), the explicitly chosen `local`
sandbox without a warm pool, and a temporary workspace root. Servers are shared per session because
each start costs a few seconds of imports.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import POSTGRES_URL, reset_postgres

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Settings the tests choose; anything inherited from the caller's environment is dropped first.
_INHERITED_PREFIXES = ("AUTOBOTS_", "OPENAI_", "AZURE_OPENAI_", "ANTHROPIC_")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(workdir: Path, database_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a server or CLI process: only the settings given here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_INHERITED_PREFIXES)}
    env.update({
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
    })
    env.update(overrides)
    return env


@dataclass
class ServerProcess:
    """A started server: its URL, process, environment (for CLI calls) and log file."""

    base_url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    workdir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        returncode = self.process.returncode
        assert returncode is not None, "the server process did not exit"
        return returncode


def launch_server(workdir: Path, database_url: str, **overrides: str) -> ServerProcess:
    """Start `python -m autobots serve` on a free port without waiting for it."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(workdir, database_url, AUTOBOTS_PORT=str(port), **overrides)
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "autobots", "serve"], cwd=workdir, env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(f"http://127.0.0.1:{port}", process, env, workdir, log_path)


def wait_ready(server: ServerProcess) -> ServerProcess:
    """Wait until /healthz answers; fail with the server's log if it exits or takes too long."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode} during startup:\n{server.log()[-4000:]}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    pytest.fail(f"the server did not answer /healthz within {START_TIMEOUT_S} s:\n{server.log()[-4000:]}")


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@functools.cache
def session_postgres_url() -> str:
    """A PostgreSQL database of its own for the servers that live the whole session.

    Other tests reset the configured database (drop and recreate its schema) while these servers still run; on
    a shared database the servers would see those tests' runs as their own to schedule and execute.
    """
    from autobots.db.engine import sync_url
    from sqlalchemy import create_engine, make_url, text

    url = make_url(POSTGRES_URL)
    name = f"{url.database}_e2e"
    engine = create_engine(sync_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_reset() -> bool:
    """Reset the session servers' PostgreSQL database once per session when one is configured; True if so."""
    if POSTGRES_URL.startswith("postgresql"):
        reset_postgres(session_postgres_url())
        return True
    return False


def database_for(root: Path, name: str, postgres: bool) -> str:
    return session_postgres_url() if postgres else f"sqlite:///{root / name / 'autobots.sqlite'}"


def stop_and_check(server: ServerProcess) -> None:
    returncode = server.stop()
    assert server.process.poll() is not None
    # uvicorn exits 0 after a graceful SIGTERM.
    assert returncode in (0, -signal.SIGTERM), f"exit status {returncode}:\n{server.log()[-4000:]}"


@pytest.fixture(scope="session")
def launched(e2e_root: Path, postgres_reset: bool) -> Iterator[dict[str, ServerProcess]]:
    """Both servers, launched together: their imports overlap, which saves seconds per session."""
    servers = {"local": launch_server(e2e_root / "local", database_for(e2e_root, "local", postgres_reset))}
    if postgres_reset:
        # One shared PostgreSQL database: let the first server finish its migrations alone.
        wait_ready(servers["local"])
    servers["apikey"] = launch_server(e2e_root / "apikey", database_for(e2e_root, "apikey", postgres_reset),
                                      AUTOBOTS_AUTH_MODE="apikey")
    try:
        yield servers
    finally:
        for server in servers.values():
            stop_and_check(server)


@pytest.fixture(scope="session")
def server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A local-auth server on loopback."""
    return wait_ready(launched["local"])


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return server.base_url


@pytest.fixture(scope="session")
def apikey_server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A server that requires `Authorization: Bearer <key>`."""
    return wait_ready(launched["apikey"])


@pytest.fixture(scope="session")
def api_keys(apikey_server: ServerProcess) -> dict[str, str]:
    """Keys for alice and bob, made with `python -m autobots users add NAME` (the key is the last line)."""
    procs = {name: subprocess.Popen([sys.executable, "-m", "autobots", "users", "add", name],
                                    cwd=apikey_server.workdir, env=apikey_server.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name in ("alice", "bob")}
    keys: dict[str, str] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"users add {name} failed ({proc.returncode}):\n{out}\n{err}"
        keys[name] = out.strip().splitlines()[-1].strip()
    return keys


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
