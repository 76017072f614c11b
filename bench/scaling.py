"""10. Scale-out: API replicas and run workers dispatching through PostgreSQL (`run_dispatch = "procrastinate"`).

Each measurement starts its own deployment as real processes on loopback (`tests/support/cluster.py`) on a fresh
PostgreSQL database of the local server, with the model an OpenAI-compatible server in its own process:
- scaling: the same batch of runs (two agents, `MESSAGES` model turns each, `LATENCY_MS` per call) with one
  worker and with two, the batch posted at once; makespan from the first POST to the last run settled;
- CPU: of the API replicas, the workers and the PostgreSQL backends during the batch, per model turn and per run;
  the engine's overhead per run is that CPU less the library's own CPU for the same turns
  (`bench/library_run.py --gather`, the same model server);
- cancel: a run streaming on replica A is cancelled through replica B; latency from the POST to the run's row
  saying `cancelled`;
- a dead worker: one of two workers SIGKILLed mid-run; time until each of its runs is running again (attempt 2)
  on the other.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import fmt, median, percentile, proc_cpu_s, run_json, tree_cpu_s
from tests.support.cluster import Cluster, fresh_postgres_database
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.specs import two_assistants_spec

LATENCY_MS = 200
MESSAGES = 5
RUNS = 200
TARGET_SCALING = 0.6
TARGET_PICKUP_S = 15.0
TARGET_CANCEL_S = 2.0
TARGET_TURNS_PER_CPU_S = 220
TERMINAL = ("completed", "incomplete", "failed", "cancelled")
API_REPLICAS = 2


def postgres_cpu_s() -> float:
    """CPU of every PostgreSQL process of this machine (the local server's backends)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += proc_cpu_s(int(entry.name))
            except (OSError, ValueError):
                continue
    return total


def cluster_cpu_s(cluster: Cluster) -> float:
    return sum(tree_cpu_s(api.pid) for api in cluster.apis) + sum(
        tree_cpu_s(worker.process.pid) for worker in cluster.live_workers)


async def post_batch(base_urls: list[str], ids: list[str]) -> tuple[float, list[str]]:
    """Post one message to each session at once, spread over the API replicas; returns when the first POST left,
    and the runs."""
    limits = httpx.Limits(max_connections=32)
    clients = [httpx.AsyncClient(base_url=url, timeout=120, limits=limits) for url in base_urls]
    try:
        started = time.perf_counter()
        posted = await asyncio.gather(*(clients[i % len(clients)].post(f"/api/v1/sessions/{session_id}/messages",
                                                                        json={"content": "talk"})
                                        for i, session_id in enumerate(ids)))
    finally:
        for client in clients:
            await client.aclose()
    for answer in posted:
        answer.raise_for_status()
    return started, [answer.json()["run"]["id"] for answer in posted]


def wait_settled(cluster: Cluster, count: int, timeout_s: float = 900) -> float:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        settled = cluster.sql("SELECT count(*) FROM run WHERE status IN ('completed', 'incomplete', 'failed', "
                              "'cancelled')")[0][0]
        if settled >= count:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"runs not settled within {timeout_s} s")


def batch(out: Path, model_url: str, *, workers: int, runs: int, apis: int = API_REPLICAS) -> dict[str, Any]:
    database = fresh_postgres_database(f"autobots_bench_scaled_{workers}")
    cluster = Cluster.start(out / f"scaling-{workers}-workers", database, apis=apis, workers=workers,
                            AUTOBOTS_MAX_CONCURRENT_RUNS=str(runs), AUTOBOTS_MAX_STREAMS_PER_USER="0")
    try:
        with httpx.Client(base_url=cluster.apis[0].base_url, timeout=60) as client:
            spec = two_assistants_spec(model_url, max_messages=MESSAGES, name="scaling")
            workflow = client.post("/api/v1/workflows", json=spec)
            workflow.raise_for_status()
            workflow_id = workflow.json()["id"]
            sessions = [client.post("/api/v1/sessions", json={"workflow_id": workflow_id}).json()["id"]
                        for _ in range(runs)]
        cpu0, pg0 = cluster_cpu_s(cluster), postgres_cpu_s()
        started, _ = asyncio.run(post_batch([api.base_url for api in cluster.apis], sessions))
        ended = wait_settled(cluster, runs)
        cpu, pg = cluster_cpu_s(cluster) - cpu0, postgres_cpu_s() - pg0
        statuses = dict(cluster.sql("SELECT status, count(*) FROM run GROUP BY status"))
        turns = cluster.sql("SELECT count(*) FROM run_event WHERE type = 'message'")[0][0]
        per_worker = [row[0] for row in cluster.sql("SELECT count(*) FROM run GROUP BY owner ORDER BY 1")]
    finally:
        cluster.stop()
    return {"workers": workers, "makespan_s": ended - started, "service_cpu_s": cpu, "postgres_cpu_s": pg,
            "statuses": statuses, "turns": turns, "runs_per_worker": per_worker}


def cancel_and_pickup(out: Path, model_url: str, *, samples: int) -> dict[str, Any]:
    database = fresh_postgres_database("autobots_bench_scaled_cancel")
    cluster = Cluster.start(out / "scaling-cancel", database, apis=2, workers=2)
    latencies: list[float] = []
    pickups: list[float] = []
    try:
        a, b = (httpx.Client(base_url=api.base_url, timeout=60) for api in cluster.apis)
        spec = two_assistants_spec(model_url, max_messages=40, name="scaling-cancel")
        for _ in range(samples):
            session = a.post("/api/v1/sessions", json={"workflow": spec}).json()
            run_id = a.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "talk"}).json()["run"]["id"]
            while not cluster.sql("SELECT 1 FROM run_event WHERE run_id = :id AND type = 'message'", id=run_id):
                time.sleep(0.02)
            sent = time.perf_counter()
            b.post(f"/api/v1/runs/{run_id}/cancel").raise_for_status()
            while cluster.sql("SELECT status FROM run WHERE id = :id", id=run_id)[0][0] != "cancelled":
                time.sleep(0.005)
            latencies.append(time.perf_counter() - sent)
        sessions = [a.post("/api/v1/sessions", json={"workflow": spec}).json()["id"] for _ in range(8)]
        run_ids = [a.post(f"/api/v1/sessions/{s}/messages", json={"content": "talk"}).json()["run"]["id"]
                   for s in sessions]
        victim = cluster.live_workers[0]
        mark = f"%:{victim.process.pid}:%"
        while len(cluster.sql("SELECT id FROM run WHERE owner LIKE :mark AND status = 'running'", mark=mark)) < 2:
            time.sleep(0.05)
        time.sleep(1.0)
        held = [row[0] for row in cluster.sql("SELECT id FROM run WHERE owner LIKE :mark AND status = 'running'",
                                               mark=mark)]
        victim.process.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        pending = set(held)
        while pending and time.perf_counter() - killed < 120:
            for run_id in list(pending):
                if cluster.sql("SELECT 1 FROM run WHERE id = :id AND attempt = 2 AND status <> 'queued'", id=run_id):
                    pickups.append(time.perf_counter() - killed)
                    pending.discard(run_id)
            time.sleep(0.05)
        for run_id in run_ids:
            a.post(f"/api/v1/runs/{run_id}/cancel")
        a.close()
        b.close()
    finally:
        cluster.stop()
    return {"cancel_latencies_s": latencies, "pickups_s": pickups, "held": len(held), "not_picked_up": len(pending)}


def run(quick: bool, out: Path) -> dict[str, Any]:
    if quick:
        return {"title": "10. Scale-out", "figures": {"skipped": "quick mode"},
                "markdown": "Skipped in quick mode (it starts three deployments on PostgreSQL; `tests/scaled` "
                            "covers their behaviour); run without `--quick`."}
    runs = RUNS
    with FakeOpenAIProcess(latency_ms=LATENCY_MS, terminate_after=None, log=out / "scaling-model.log") as model:
        one = batch(out, model.base_url, workers=1, runs=runs)
        two = batch(out, model.base_url, workers=2, runs=runs)
        library = run_json(["-m", "bench.library_run", "--base-url", model.base_url, "--runs", str(runs),
                            "--messages", str(MESSAGES), "--gather", "--warmup", "1"], timeout_s=900,
                           log=out / "scaling-library.log")
        cancel = cancel_and_pickup(out, model.base_url, samples=20)
    library_ms_per_turn = library["cpu_s"] / library["turns"] * 1000
    rows = []
    for result in (one, two):
        total = result["service_cpu_s"] + result["postgres_cpu_s"]
        result["turns_per_cpu_s"] = result["turns"] / result["service_cpu_s"]
        result["turns_per_cpu_s_with_postgres"] = result["turns"] / total
        result["overhead_ms_per_run"] = (total * 1000 - library_ms_per_turn * result["turns"]) / runs
        rows.append(result)
    ratio = two["makespan_s"] / one["makespan_s"]
    latencies, pickups = cancel["cancel_latencies_s"], cancel["pickups_s"]
    figures = {
        "runs": runs, "latency_ms": LATENCY_MS, "messages": MESSAGES, "one_worker": one, "two_workers": two,
        "scaling_ratio": ratio, "scaling_met": ratio <= TARGET_SCALING,
        "library_turns_per_cpu_s": 1000 / library_ms_per_turn,
        "cancel_p50_s": percentile(latencies, 50), "cancel_p99_s": percentile(latencies, 99),
        "cancel_met": percentile(latencies, 99) <= TARGET_CANCEL_S,
        "pickup_max_s": max(pickups) if pickups else None, "pickup_median_s": median(pickups) if pickups else None,
        "pickup_met": bool(pickups) and cancel["not_picked_up"] == 0 and max(pickups) <= TARGET_PICKUP_S,
        "turns_per_cpu_met": two["turns_per_cpu_s"] >= TARGET_TURNS_PER_CPU_S,
    }
    md = [
        f"Deployment: {API_REPLICAS} API replicas `serve --run-workers 0` (the batch's POSTs alternate between "
        f"them) and `autobots worker` processes, `run_dispatch = "
        f"procrastinate`, on a fresh database of the local PostgreSQL; model: the fake OpenAI server in its own "
        f"process, {LATENCY_MS} ms per call. Batch: {runs} sessions of two agents talking for {MESSAGES} model turns, "
        "one message posted to each at once (`max_concurrent_runs` = the batch); makespan from the first POST to "
        "the last run settled. CPU: the API replicas and the workers (`/proc`), and every PostgreSQL backend.",
        "",
        "| workers | makespan (s) | runs per worker | service CPU (s) | PostgreSQL CPU (s) | model turns per "
        "CPU-second (service / with PostgreSQL) | engine overhead per run (ms CPU) |",
        "|---:|---:|---|---:|---:|---:|---:|",
        *(f"| {r['workers']} | {fmt(r['makespan_s'])} | {', '.join(map(str, r['runs_per_worker']))} | "
          f"{fmt(r['service_cpu_s'])} | {fmt(r['postgres_cpu_s'])} | {fmt(r['turns_per_cpu_s'], 0)} / "
          f"{fmt(r['turns_per_cpu_s_with_postgres'], 0)} | {fmt(r['overhead_ms_per_run'], 1)} |" for r in rows),
        "",
        f"- Scaling, makespan with 2 workers / 1 worker: **{fmt(ratio)}×** (target ≤ {TARGET_SCALING}×: "
        f"{'met' if figures['scaling_met'] else 'missed'}).",
        f"- Model turns per CPU-second with 2 workers: **{fmt(two['turns_per_cpu_s'], 0)}** (service processes; "
        f"target ≥ {TARGET_TURNS_PER_CPU_S}: {'met' if figures['turns_per_cpu_met'] else 'missed'}); the library "
        f"alone: {fmt(figures['library_turns_per_cpu_s'], 0)} (`bench/library_run.py --gather`, same model server).",
        "- Engine overhead per run: the CPU of the service and PostgreSQL for the batch, less the library's CPU for "
        "the same model turns, per run (dispatch, ledger, journal, events, the HTTP requests).",
        f"- Cancel through replica B of a run streaming on replica A ({len(latencies)} runs): p50 "
        f"**{fmt(figures['cancel_p50_s'] * 1000, 0)} ms**, p99 **{fmt(figures['cancel_p99_s'] * 1000, 0)} ms** "
        f"(target ≤ {TARGET_CANCEL_S:.0f} s: {'met' if figures['cancel_met'] else 'missed'}), from the POST to the "
        "run's row saying `cancelled`.",
        f"- A worker SIGKILLed holding {cancel['held']} running runs: each running again on the other worker "
        f"(attempt 2) after median {fmt(figures['pickup_median_s'] or 0)} s, at most "
        f"**{fmt(figures['pickup_max_s'] or 0)} s** (target ≤ {TARGET_PICKUP_S:.0f} s: "
        f"{'met' if figures['pickup_met'] else 'missed'}; heartbeat 2 s, stale after 8 s, recovery every 2 s).",
    ]
    return {"title": "10. Scale-out", "figures": figures, "markdown": "\n".join(md)}
