"""A scaled deployment on loopback: API replicas (`serve --run-workers 0`) and run workers (`autobots worker`) as
real processes, dispatching through a PostgreSQL database of their own (`run_dispatch = "procrastinate"`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from tests.support.servers import ServerProcess, free_port, server_env, start_server, wait_ready

POSTGRES_SERVER_URL = os.environ.get("AUTOBOTS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WORKER_READY_LINE = "taking runs from"
START_TIMEOUT_S = 60.0


def fresh_postgres_database(name: str) -> str:
    """An empty PostgreSQL database `name` beside the test server's; skips (or, with AUTOBOTS_REQUIRE_POSTGRES=1,
    fails) when no PostgreSQL answers."""
    from autobots.db.engine import sync_url

    server = make_url(POSTGRES_SERVER_URL)
    try:
        engine = create_engine(sync_url(POSTGRES_SERVER_URL), isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("AUTOBOTS_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"no PostgreSQL at {POSTGRES_SERVER_URL}: {type(exc).__name__}")
    return server.set(database=name).render_as_string(hide_password=False)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class Cluster:
    """API replicas and run workers sharing one database; `env` is what every process of it gets."""

    root: Path
    database_url: str
    env: dict[str, str]
    apis: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)
    _engine: Engine | None = None

    @classmethod
    def start(cls, root: Path, database_url: str, *, apis: int, workers: int, **overrides: str) -> Cluster:
        env = server_env(root, database_url, AUTOBOTS_RUN_DISPATCH="procrastinate", AUTOBOTS_RUN_WORKERS="0",
                         AUTOBOTS_SANDBOX="none", AUTOBOTS_MAX_ACTIVE_RUNS_PER_USER="0",
                         AUTOBOTS_RATE_LIMIT_PER_KEY="0", **overrides)
        cluster = cls(root, database_url, env)
        try:
            for _ in range(apis):
                cluster.start_api()
            for _ in range(workers):
                cluster.start_worker()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def start_api(self) -> ServerProcess:
        port = free_port()
        server = start_server(self.root / f"api-{len(self.apis)}", {**self.env, "AUTOBOTS_PORT": str(port)},
                              port=port)
        self.apis.append(server)
        return wait_ready(server)

    def start_worker(self) -> WorkerProcess:
        number = len(self.workers)
        workdir = self.root / f"worker-{number}"
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "worker.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "autobots", "worker"], cwd=workdir, env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT)
        worker = WorkerProcess(process, log_path)
        self.workers.append(worker)
        deadline = time.monotonic() + START_TIMEOUT_S
        while WORKER_READY_LINE not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"run worker did not start:\n{worker.log()[-4000:]}")
            time.sleep(0.1)
        return worker

    @property
    def live_workers(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.process.poll() is None]

    def ensure_workers(self, count: int) -> None:
        while len(self.live_workers) < count:
            self.start_worker()

    def kill(self, worker: WorkerProcess) -> None:
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(timeout=10)

    def terminate(self, worker: WorkerProcess) -> int:
        worker.process.send_signal(signal.SIGTERM)
        return worker.process.wait(timeout=30)

    def sql(self, statement: str, **params: object) -> list[tuple]:
        """Read the ledger directly (what the API does not show, such as which worker executed a run)."""
        from autobots.db.engine import sync_url

        if self._engine is None:
            self._engine = create_engine(sync_url(self.database_url))
        with self._engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(statement), params)]

    def stop(self) -> None:
        for worker in self.live_workers:
            worker.process.send_signal(signal.SIGTERM)
        for api in self.apis:
            api.stop()
        for worker in self.workers:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
        if self._engine is not None:
            self._engine.dispose()
