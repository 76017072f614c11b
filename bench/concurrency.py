"""2. Concurrency (and 5. memory): N runs started at once vs N team.run() gathered in one process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ROOT,
    FakeModel,
    Server,
    clean_env,
    create_sessions,
    create_workflow,
    fmt,
    percentile,
    proc_rss_mb,
    run_json,
    tree_cpu_s,
    tree_pids,
    tree_rss_mb,
    workflow_spec,
)

MESSAGES = 5
LATENCY_MS = 200
TARGET_RATIO = 1.25
TARGET_P99_MS = 100.0


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
        if roles != ["user", "assistant"] or inner != MESSAGES or status != "completed":
            bad.append({"session": session_id, "roles": roles, "inner": inner, "status": status})
            lost += max(0, 2 - len(rows)) + max(0, MESSAGES - inner)
            incomplete += 1
    return {"sessions_checked": len(sessions), "incomplete_runs": incomplete, "lost_messages": lost,
            "examples": bad[:5]}


def service_load(server: Server, model_url: str, count: int, out: Path, quick: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    result["rss_idle_start_mb"] = tree_rss_mb(server.pid)
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        workflow = create_workflow(client, workflow_spec(model_url, MESSAGES, name="concurrency"))
        sessions = create_sessions(client, workflow, count)
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


def run(quick: bool, out: Path) -> dict[str, Any]:
    count = 5 if quick else 200
    overrides = {"AUTOBOTS_MAX_CONCURRENT_RUNS": str(count)}
    with FakeModel(latency_ms=LATENCY_MS, log=out / "concurrency-model.log") as model:
        with Server(out / "concurrency-server", overrides=overrides) as server:
            service = service_load(server, model.base_url, count, out, quick)
        library = run_json(["-m", "bench.library_run", "--base-url", model.base_url, "--runs", str(count),
                            "--messages", str(MESSAGES), "--warmup", "1", "--gather"],
                           timeout_s=400, log=out / "concurrency-library.log")
        single = {"wall_s": float("nan")} if quick else run_json(
            ["-m", "bench.library_run", "--base-url", model.base_url, "--runs", "1", "--messages", str(MESSAGES),
             "--warmup", "1"], timeout_s=120)
    load = service["load"]
    makespan = load["makespan_s"] or float("nan")
    floor = library["wall_s"]
    ratio = makespan / floor
    lat = service["reads"]["latencies_ms"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    turns = count * MESSAGES
    s_tps = turns / service["cpu_s"] if service["cpu_s"] else float("nan")
    l_tps = library["turns"] / library["cpu_s"] if library["cpu_s"] else float("nan")
    v = service["verify"]
    figures = {"runs": count, "messages_per_run": MESSAGES, "model_latency_ms": LATENCY_MS,
               "service_makespan_s": makespan, "library_floor_s": floor, "library_single_run_s": single["wall_s"],
               "ratio": ratio, "ratio_met": ratio <= TARGET_RATIO,
               "lost_messages": v["lost_messages"], "incomplete_runs": v["incomplete_runs"],
               "read_p50_ms": p50, "read_p99_ms": p99, "read_samples": len(lat), "read_max_ms": max(lat, default=0),
               "read_errors": service["reads"].get("errors"), "p99_met": p99 <= TARGET_P99_MS,
               "service_cpu_s": service["cpu_s"], "library_cpu_s": library["cpu_s"],
               "service_turns_per_cpu_s": s_tps, "library_turns_per_cpu_s": l_tps,
               "rss_idle_start_mb": service["rss_idle_start_mb"], "rss_idle_mb": service["rss_idle_mb"],
               "rss_peak_mb": service["rss_peak_under_load_mb"], "rss_hwm_mb": service["rss_hwm_mb"],
               "library_rss_max_mb": library.get("rss_max_mb"),
               "load": {k: v2 for k, v2 in load.items() if k != "run_latencies_s"},
               "run_latency_p50_s": percentile(load["run_latencies_s"], 50), "verify": v}
    md = [
        f"{count} sessions, one message each, all POSTed at once (202, no wait) by `bench/loadgen.py` in its own "
        f"process, each run then followed over its SSE stream until `done`; {MESSAGES} agent messages per run; "
        f"fake model in its own process with {LATENCY_MS} ms latency; server with "
        f"`AUTOBOTS_MAX_CONCURRENT_RUNS={count}` (default 64). Reads: `bench/reader.py`, another process, one "
        "`GET /api/v1/sessions/{id}/messages?limit=100` every 50 ms over the whole load. Library floor: the same "
        f"{count} `team.run()` calls gathered in one asyncio process (`bench/library_run.py --gather`).",
        "",
        "| | service | library floor | ratio |",
        "|---|---:|---:|---:|",
        f"| makespan of {count} runs (s) | {fmt(makespan)} | {fmt(floor)} | **{fmt(ratio)}×** |",
        f"| one run alone (s) | | {fmt(single['wall_s'], 3)} | |",
        f"| CPU for all runs (s) | {fmt(service['cpu_s'])} | {fmt(library['cpu_s'])} | "
        f"{fmt(service['cpu_s'] / library['cpu_s'])}× |",
        f"| model turns per CPU-second | {fmt(s_tps, 0)} | {fmt(l_tps, 0)} | |",
        "",
        f"- Makespan target ≤ {TARGET_RATIO}× the floor: **{'met' if ratio <= TARGET_RATIO else 'missed'}**.",
        f"- Runs finished: {load['finished']}/{count}, statuses {load['statuses']}; lost messages: "
        f"**{v['lost_messages']}**, incomplete runs: {v['incomplete_runs']} (every session checked for its user "
        f"message and a completed reply with {MESSAGES} inner messages).",
        f"- `GET /sessions/{{id}}/messages` during the load ({len(lat)} samples, {service['reads'].get('errors', 0)} "
        f"errors): p50 **{fmt(p50, 1)} ms**, p99 **{fmt(p99, 1)} ms**, max {fmt(max(lat, default=0), 1)} ms — "
        f"target p99 ≤ {TARGET_P99_MS:g} ms: **{'met' if p99 <= TARGET_P99_MS else 'missed'}**.",
        f"- Slowest POST (202) answered after {fmt(load.get('accepted_max_s') or float('nan'), 2)} s.",
    ]
    memory_md = [
        f"Resident memory (VmRSS from `/proc/<pid>/status`), summed over the server's {service.get('processes', 1)} "
        "processes (the API process and its run workers; pages they share are counted in each):", "",
        "| state | RSS (MiB) |", "|---|---:|",
        f"| idle, just started | {fmt(service['rss_idle_start_mb'], 1)} |",
        f"| idle, {count} sessions created | {fmt(service['rss_idle_mb'], 1)} |",
        f"| peak with {count} runs in flight (sampled every 100 ms) | {fmt(service['rss_peak_under_load_mb'], 1)} |",
        f"| high-water mark (VmHWM) at the end | {fmt(service['rss_hwm_mb'], 1)} |",
        f"| library process, {count} gathered runs (ru_maxrss) | {fmt(library.get('rss_max_mb') or float('nan'), 1)} |",
        "",
        f"Per run in flight: ≈ {fmt((service['rss_peak_under_load_mb'] - service['rss_idle_mb']) / count * 1024, 0)} KiB.",
    ]
    return {"title": "2. Concurrency", "figures": figures, "markdown": "\n".join(md),
            "extra": {"title": "5. Memory", "markdown": "\n".join(memory_md)}}
