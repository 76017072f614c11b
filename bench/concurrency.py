"""2. Concurrency (and 5. memory): N runs started at once vs N team.run() gathered in one process."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ROOT,
    Server,
    clean_env,
    create_sessions,
    create_workflow,
    fmt,
    median,
    percentile,
    proc_rss_mb,
    run_json,
    tree_cpu_s,
    tree_pids,
    tree_rss_mb,
    wait_until_started,
    warm_up,
)
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.specs import two_assistants_spec

MESSAGES = 5
LATENCY_MS = 200
TARGET_RATIO = 1.25
TARGET_P99_MS = 100.0
ROUNDS = 3


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.samples.append(tree_rss_mb(self.pid))
            except OSError:
                return
            self.stop.wait(self.interval_s)


def verify(client: httpx.Client, sessions: list[str]) -> dict[str, Any]:
    """Every run completed with exactly its messages: the user message, and a reply carrying MESSAGES."""
    lost, incomplete, bad = 0, 0, []
    for session_id in sessions:
        data = client.get(f"/api/v1/sessions/{session_id}/messages", params={"limit": 100, "order": "asc"}).json()
        rows = data["data"]
        roles = [m["role"] for m in rows]
        reply = next((m for m in rows if m["role"] == "assistant"), None)
        inner = len(reply["metadata"].get("messages", [])) if reply else 0
        status = reply["metadata"].get("status") if reply else None
        if roles != ["user", "assistant"] or inner != MESSAGES or status != "incomplete":  # ended by max_messages
            bad.append({"session": session_id, "roles": roles, "inner": inner, "status": status})
            lost += max(0, 2 - len(rows)) + max(0, MESSAGES - inner)
            incomplete += 1
    return {"sessions_checked": len(sessions), "incomplete_runs": incomplete, "lost_messages": lost,
            "examples": bad[:5]}


def service_load(server: Server, model_url: str, count: int, out: Path, quick: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    result["rss_idle_start_mb"] = tree_rss_mb(server.pid)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        workflow = create_workflow(client, two_assistants_spec(model_url, max_messages=MESSAGES, name="concurrency"))
        sessions = create_sessions(client, workflow, count)
        wait_until_started(server.pid)
        result["warmup_runs"] = warm_up(client, workflow)
        ids_file = out / "concurrency-sessions.json"
        ids_file.write_text(json.dumps(sessions))
        time.sleep(0.1 if quick else 0.5)
        result["rss_idle_mb"] = tree_rss_mb(server.pid)
        stop_file = out / "concurrency-reader.stop"
        stop_file.unlink(missing_ok=True)
        env = clean_env()
        reader = subprocess.Popen([sys.executable, "-m", "bench.reader", "--base-url", server.base_url,
                                   "--sessions", str(ids_file), "--stop-file", str(stop_file), "--max-s", "600"],
                                  stdout=subprocess.PIPE, stderr=(out / "reader.log").open("w"), text=True,
                                  env=env, cwd=ROOT)
        time.sleep(0.3 if quick else 1.0)  # the reader's imports, before the load starts
        sampler = RssSampler(server.pid)
        sampler.start()
        cpu0 = tree_cpu_s(server.pid)
        try:
            load = run_json(["-m", "bench.loadgen", "--base-url", server.base_url, "--sessions", str(ids_file),
                             "--timeout-s", "300"], timeout_s=400, log=out / "loadgen.log")
        finally:
            cpu = tree_cpu_s(server.pid) - cpu0
            sampler.stop.set()
            sampler.join(timeout=5)
            stop_file.touch()
            try:
                reader_out, _ = reader.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                reader.kill()
                reader_out, _ = reader.communicate(timeout=10)
        reads = json.loads(reader_out.strip().splitlines()[-1]) if reader_out.strip() else {"latencies_ms": []}
        result["rss_peak_under_load_mb"] = max(sampler.samples, default=float("nan"))
        result["rss_hwm_mb"] = sum(proc_rss_mb(pid)[1] for pid in tree_pids(server.pid))
        result["processes"] = len(tree_pids(server.pid))
        result["verify"] = verify(client, sessions)
    result.update(load=load, cpu_s=cpu, reads=reads)
    return result


def measure_round(index: int, model_url: str, count: int, out: Path, quick: bool) -> dict[str, Any]:
    """A fresh server (new temporary database) under the load, stopped, then at once the library floor."""
    overrides = {"AUTOBOTS_MAX_CONCURRENT_RUNS": str(count)}
    with Server(out / f"concurrency-server-{index}", overrides=overrides) as server:
        service = service_load(server, model_url, count, server.workdir, quick)
    library = run_json(["-m", "bench.library_run", "--base-url", model_url, "--runs", str(count),
                        "--messages", str(MESSAGES), "--warmup", "1", "--gather"],
                       timeout_s=400, log=out / f"concurrency-library-{index}.log")
    load = service["load"]
    makespan = load["makespan_s"] or float("nan")
    latencies = service["reads"]["latencies_ms"]
    return {"service_makespan_s": makespan, "library_floor_s": library["wall_s"],
            "ratio": makespan / library["wall_s"], "service_cpu_s": service["cpu_s"],
            "library_cpu_s": library["cpu_s"], "library_turns": library["turns"],
            "accepted_max_s": load.get("accepted_max_s"), "finished": load["finished"],
            "read_p50_ms": percentile(latencies, 50), "read_p99_ms": percentile(latencies, 99),
            "read_samples": len(latencies), "read_errors": service["reads"].get("errors", 0),
            "lost_messages": service["verify"]["lost_messages"],
            "incomplete_runs": service["verify"]["incomplete_runs"], "rss_peak_mb": service["rss_peak_under_load_mb"],
            "load": {k: v for k, v in load.items() if k != "run_latencies_s"}, "verify": service["verify"],
            "service": service, "library": library}


def median_of(values: list[float]) -> float:
    """The median, or NaN when a value is missing (a round where no run finished has no makespan)."""
    return float("nan") if any(math.isnan(v) for v in values) else median(values)


def run(quick: bool, out: Path) -> dict[str, Any]:
    count, rounds = (5, 1) if quick else (200, ROUNDS)
    measured: list[dict[str, Any]] = []
    with FakeOpenAIProcess(latency_ms=LATENCY_MS, terminate_after=None, log=out / "concurrency-model.log") as model:
        # Service and library alternate round by round, so a drift in the machine's speed weighs on both alike.
        for i in range(rounds):
            measured.append(measure_round(i, model.base_url, count, out, quick))
        single = {"wall_s": float("nan")} if quick else run_json(
            ["-m", "bench.library_run", "--base-url", model.base_url, "--runs", "1", "--messages", str(MESSAGES),
             "--warmup", "1"], timeout_s=120)
    first_service, first_library = measured[0]["service"], measured[0]["library"]
    per_round = [{k: v for k, v in r.items() if k not in ("service", "library")} for r in measured]
    ratio = median_of([r["ratio"] for r in per_round])
    makespan = median_of([r["service_makespan_s"] for r in per_round])
    floor = median([r["library_floor_s"] for r in per_round])
    lat = [x for r in measured for x in r["service"]["reads"]["latencies_ms"]]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    read_errors = sum(r["read_errors"] for r in per_round)
    run_latencies = [x for r in measured for x in r["service"]["load"]["run_latencies_s"]]
    service_cpu = sum(r["service_cpu_s"] for r in per_round)
    library_cpu = sum(r["library_cpu_s"] for r in per_round)
    s_tps = count * MESSAGES * rounds / service_cpu if service_cpu else float("nan")
    l_tps = sum(r["library_turns"] for r in per_round) / library_cpu if library_cpu else float("nan")
    lost = sum(r["lost_messages"] for r in per_round)
    incomplete = sum(r["incomplete_runs"] for r in per_round)
    finished = sum(r["finished"] for r in per_round)
    statuses: Counter[str] = Counter()
    for r in per_round:
        statuses.update(r["load"]["statuses"])
    accepted_max = max((r["accepted_max_s"] for r in per_round if r["accepted_max_s"] is not None),
                       default=float("nan"))
    verified = {"sessions_checked": sum(r["verify"]["sessions_checked"] for r in per_round),
                "incomplete_runs": incomplete, "lost_messages": lost,
                "examples": [e for r in per_round for e in r["verify"]["examples"]][:5]}
    figures = {"runs": count, "rounds": per_round, "messages_per_run": MESSAGES, "model_latency_ms": LATENCY_MS,
               "service_makespan_s": makespan, "library_floor_s": floor, "library_single_run_s": single["wall_s"],
               "ratio": ratio, "ratio_met": ratio <= TARGET_RATIO,
               "lost_messages": lost, "incomplete_runs": incomplete,
               "read_p50_ms": p50, "read_p99_ms": p99, "read_samples": len(lat), "read_max_ms": max(lat, default=0),
               "read_errors": read_errors, "p99_met": p99 <= TARGET_P99_MS,
               "service_cpu_s": service_cpu, "library_cpu_s": library_cpu,
               "service_turns_per_cpu_s": s_tps, "library_turns_per_cpu_s": l_tps,
               "rss_idle_start_mb": first_service["rss_idle_start_mb"], "rss_idle_mb": first_service["rss_idle_mb"],
               "rss_peak_mb": first_service["rss_peak_under_load_mb"], "rss_hwm_mb": first_service["rss_hwm_mb"],
               "library_rss_max_mb": first_library.get("rss_max_mb"), "accepted_max_s": accepted_max,
               "run_latency_p50_s": percentile(run_latencies, 50), "verify": verified}
    round_rows = [f"| {i + 1} | {fmt(r['service_makespan_s'])} | {fmt(r['library_floor_s'])} | {fmt(r['ratio'])}× | "
                  f"{fmt(r['read_p99_ms'], 1)} | {r['lost_messages']} |" for i, r in enumerate(per_round)]
    md = [
        f"{count} sessions, one message each, all POSTed at once (202, no wait) by `bench/loadgen.py` in its own "
        f"process, each run then followed over its SSE stream until `done`; {MESSAGES} agent messages per run; "
        f"fake model in its own process with {LATENCY_MS} ms latency; server with "
        f"`AUTOBOTS_MAX_CONCURRENT_RUNS={count}` (default 64). Reads: `bench/reader.py`, another process, one "
        "`GET /api/v1/sessions/{id}/messages?limit=100` every 50 ms over the whole load. Library floor: the same "
        f"{count} `team.run()` calls gathered in one asyncio process (`bench/library_run.py --gather`).",
        "",
        f"Method: {rounds} round(s), service and library alternating. Each round starts a fresh server (a new "
        "temporary SQLite database), waits until its run workers have finished starting (their CPU goes quiet) and "
        "runs one warm-up run on each worker at once (the library process runs one warm-up run too), then runs the "
        "service load, stops the server, and at once runs the library floor; "
        "one fake model process serves every round. The machine's speed drifts over minutes, so each round's "
        "ratio compares two sides measured back to back. **The headline ratio is the median of the per-round "
        "ratios**; the makespan and floor beside it are the medians of the rounds' makespans and floors (their "
        "quotient need not equal the headline). Lost messages and CPU are summed over all rounds (every round's "
        "sessions are verified), read latencies pool the samples of all rounds.",
        "",
        "| round | service makespan (s) | library floor (s) | ratio | read p99 (ms) | lost messages |",
        "|---:|---:|---:|---:|---:|---:|",
        *round_rows,
        "",
        "| | service | library floor | ratio |",
        "|---|---:|---:|---:|",
        f"| makespan of {count} runs, median of the rounds (s) | {fmt(makespan)} | {fmt(floor)} | |",
        f"| makespan ratio, median of the {rounds} per-round ratios | | | **{fmt(ratio)}×** |",
        f"| one run alone (s) | | {fmt(single['wall_s'], 3)} | |",
        f"| CPU for all runs of all rounds (s) | {fmt(service_cpu)} | {fmt(library_cpu)} | "
        f"{fmt(service_cpu / library_cpu)}× |",
        f"| model turns per CPU-second | {fmt(s_tps, 0)} | {fmt(l_tps, 0)} | |",
        "",
        f"- Makespan target ≤ {TARGET_RATIO}× the floor (on the median of the per-round ratios): "
        f"**{'met' if ratio <= TARGET_RATIO else 'missed'}**.",
        f"- Runs finished: {finished}/{count * rounds} over {rounds} round(s), statuses {dict(statuses)}; lost "
        f"messages: **{lost}**, incomplete runs: {incomplete} (every session of every round checked for its user "
        f"message and a completed reply with {MESSAGES} inner messages).",
        f"- `GET /sessions/{{id}}/messages` during the load ({len(lat)} samples pooled over the rounds, "
        f"{read_errors} errors): p50 **{fmt(p50, 1)} ms**, p99 **{fmt(p99, 1)} ms**, max "
        f"{fmt(max(lat, default=0), 1)} ms — target p99 ≤ {TARGET_P99_MS:g} ms: "
        f"**{'met' if p99 <= TARGET_P99_MS else 'missed'}**.",
        f"- Slowest POST (202) answered after {fmt(accepted_max, 2)} s (slowest of all rounds).",
    ]
    peaks = ", ".join(fmt(r["rss_peak_mb"], 1) for r in per_round)
    memory_md = [
        f"Resident memory (VmRSS from `/proc/<pid>/status`) in the first round of section 2, summed over the "
        f"server's {first_service.get('processes', 1)} processes (the API process and its run workers; pages they "
        "share are counted in each):", "",
        "| state | RSS (MiB) |", "|---|---:|",
        f"| idle, just started | {fmt(first_service['rss_idle_start_mb'], 1)} |",
        f"| idle, {count} sessions created | {fmt(first_service['rss_idle_mb'], 1)} |",
        f"| peak with {count} runs in flight (sampled every 100 ms) | "
        f"{fmt(first_service['rss_peak_under_load_mb'], 1)} |",
        f"| high-water mark (VmHWM) at the end | {fmt(first_service['rss_hwm_mb'], 1)} |",
        f"| library process, {count} gathered runs (ru_maxrss) | "
        f"{fmt(first_library.get('rss_max_mb') or float('nan'), 1)} |",
        "",
        f"Per run in flight: ≈ "
        f"{fmt((first_service['rss_peak_under_load_mb'] - first_service['rss_idle_mb']) / count * 1024, 0)} KiB. "
        f"Peak under load in each round (a fresh server each): {peaks} MiB.",
    ]
    return {"title": "2. Concurrency", "figures": figures, "markdown": "\n".join(md),
            "extra": {"title": "5. Memory", "markdown": "\n".join(memory_md)}}
