"""Shared pieces of the benchmarks: processes, /proc accounting, the workflow under test, statistics.

The fake model server, the server launcher and the spec factory are the tests' own (`tests/support/`).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import servers

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
MODEL = "gpt-4o-mini"
TASK = "Count from one to three and explain each step briefly."
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- /proc accounting -------------------------------------------------------------------------------------------

def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, rest = line.split(":", 1)
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def tree_pids(pid: int) -> list[int]:
    """The process and its descendants (the server and its run workers)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(raw[raw.rindex(")") + 2:].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and its living descendants."""
    total = 0.0
    for member in tree_pids(pid):
        try:
            total += proc_cpu_s(member)
        except OSError:
            pass
    return total


def tree_rss_mb(pid: int) -> float:
    """Summed VmRSS of a process and its descendants (pages they share are counted in each)."""
    total = 0.0
    for member in tree_pids(pid):
        try:
            total += proc_rss_mb(member)[0]
        except OSError:
            pass
    return total


def self_cpu_s() -> float:
    return time.process_time()


# -- processes ------------------------------------------------------------------------------------------------------

def clean_env(**overrides: str) -> dict[str, str]:
    """A helper process's environment: no inherited settings or model keys, this repository importable."""
    return servers.clean_env(**{"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                                **overrides})


@dataclass
class Server:
    """A real `python -m autobots serve` on a free loopback port with a temporary SQLite database."""

    workdir: Path
    overrides: dict[str, str] = field(default_factory=dict)
    process: servers.ServerProcess | None = None

    @property
    def started(self) -> servers.ServerProcess:
        assert self.process is not None, "the server is not started"
        return self.process

    @property
    def base_url(self) -> str:
        return self.started.base_url

    @property
    def pid(self) -> int:
        return self.started.pid

    @property
    def database_path(self) -> Path:
        return self.workdir / "autobots.sqlite"

    def env(self, port: int) -> dict[str, str]:
        return clean_env(**{
            "AUTOBOTS_DATABASE_URL": f"sqlite:///{self.database_path}",
            "AUTOBOTS_AUTH_MODE": "local",
            "AUTOBOTS_SANDBOX": "none",
            "AUTOBOTS_SANDBOX_POOL_SIZE": "0",
            "AUTOBOTS_SANDBOX_WORKSPACE_ROOT": str(self.workdir / "workspaces"),
            "AUTOBOTS_CONFIG": str(self.workdir / "config.json"),  # absent: env vars and defaults only
            "AUTOBOTS_PORT": str(port),
            # One local user drives every load here: the per-user quotas would cap the load, not measure the service.
            "AUTOBOTS_MAX_ACTIVE_RUNS_PER_USER": "0",
            "AUTOBOTS_MAX_STREAMS_PER_USER": "0",
            "AUTOBOTS_RATE_LIMIT_PER_KEY": "0",
            "PYTHONUNBUFFERED": "1",
            **self.overrides,
        })

    def __enter__(self) -> Server:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A workdir left by an earlier bench run keeps its database: every server starts on an empty one.
        for suffix in ("", "-wal", "-shm", "-journal"):
            self.database_path.with_name(self.database_path.name + suffix).unlink(missing_ok=True)
        port = servers.free_port()
        self.process = servers.wait_ready(servers.start_server(self.workdir, self.env(port), port=port),
                                          timeout_s=START_TIMEOUT_S)
        self._first_request()
        return self

    def _first_request(self) -> None:
        """Create the local user before any measured request.

        Workaround: the first authenticated requests of a fresh database can race in `get_or_create` of the
        local user and answer 500 (UNIQUE constraint failed: user.name); see RESULTS.md.
        """
        for _ in range(5):
            if httpx.get(f"{self.base_url}/api/v1/workflows", timeout=10).status_code == 200:
                return
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=STOP_TIMEOUT_S)


def wait_until_started(pid: int, *, quiet_s: float = 0.5, max_cpu_s: float = 0.03, timeout_s: float = 60.0) -> None:
    """Until the server and its run workers have finished starting: their CPU over `quiet_s` stays under
    `max_cpu_s`. The server answers /healthz before its run workers are up (each imports the model SDK and opens
    the database, about a second of CPU), and a measurement that began meanwhile would count that start-up."""
    deadline = time.monotonic() + timeout_s
    before = tree_cpu_s(pid)
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = tree_cpu_s(pid)
        if now - before < max_cpu_s:
            return
        before = now


def warm_up(client: httpx.Client, workflow_id: str) -> int:
    """One run on each run worker (or one in process), all at once, each waited for: placement puts a session on
    the worker driving the fewest, so each lands on a different one. The library's process likewise runs one
    before it is measured (first calls import, build caches and compile statements). Returns how many."""
    runs = client.get("/readyz").json().get("checks", {}).get("runs", {})
    count = int(runs.get("workers") or 1)
    sessions = create_sessions(client, workflow_id, count)

    async def run_all() -> None:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=120) as session_client:
            responses = await asyncio.gather(*(
                session_client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                                    json={"content": TASK}) for session_id in sessions))
        for response in responses:
            response.raise_for_status()

    asyncio.run(run_all())
    return count


# -- the workflow under test ------------------------------------------------------------------------------------------

def create_workflow(client: httpx.Client, spec: dict[str, Any]) -> str:
    response = client.post("/api/v1/workflows", json=spec)
    response.raise_for_status()
    return str(response.json()["id"])


def create_sessions(client: httpx.Client, workflow_id: str, count: int) -> list[str]:
    ids = []
    for i in range(count):
        response = client.post("/api/v1/sessions", json={"name": f"bench-{i}", "workflow_id": workflow_id})
        response.raise_for_status()
        ids.append(str(response.json()["id"]))
    return ids


# -- statistics and output ----------------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_json(args: list[str], *, timeout_s: float, log: Path | None = None,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a helper process that prints one JSON object as its last stdout line."""
    stderr = log.open("w") if log else subprocess.DEVNULL
    try:
        done = subprocess.run([sys.executable, *args], stdout=subprocess.PIPE, stderr=stderr, text=True,
                              timeout=timeout_s, env=env or clean_env(), cwd=ROOT, check=False)
    finally:
        if log:
            stderr.close()  # type: ignore[union-attr]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        raise RuntimeError(f"{args[:2]} exited {done.returncode}: {done.stdout[-500:]}\n{tail}")
    return json.loads(lines[-1])


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - start


def fmt(value: float, digits: int = 2) -> str:
    if value != value:  # NaN
        return "n/a"
    return f"{value:.{digits}f}"
