"""7. Pipelines: four independent steps joined by a fifth, model latency 500 ms.

The same pipeline runs with `max_parallel: 5` (ready steps at once) and `max_parallel: 1` (one after another)
through the service, alternating, and the same five agent calls run scheduled by plain asyncio
(`bench/pipeline_library.py`) as the floor. A pipeline's critical path is two model calls against five one after
another, so 0.40× is the best any scheduler can do against the sequential run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import MODEL, TASK, Server, create_sessions, create_workflow, fmt, median, run_json, tree_cpu_s
from tests.support.openai_server import FakeOpenAIProcess

LATENCY_MS = 500
BRANCHES = 4
TARGET_VS_SEQUENTIAL = 0.35
TARGET_VS_LIBRARY = 1.15
MODULES = ("planner", "scrutinizer", "code_planner", "enhancer")


def pipeline_spec(base_url: str, *, max_parallel: int) -> dict[str, Any]:
    branches = [{"id": f"branch_{i}", "module": MODULES[i % len(MODULES)], "inputs": ["task"]} for i in range(BRANCHES)]
    return {"name": f"bench-pipeline-{max_parallel}", "type": "pipeline",
            "models": {"default": {"provider": "openai", "model": MODEL, "base_url": base_url}},
            "pipeline": {"steps": [*branches, {"id": "join", "module": "enhancer",
                                               "inputs": [b["id"] for b in branches]}],
                         "output": "join", "max_parallel": max_parallel}}


def post_and_wait(client: httpx.Client, session_id: str) -> float:
    started = time.perf_counter()
    response = client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                           json={"content": TASK})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    run = response.json()["run"]
    if run["status"] != "completed" or len(run["steps"] or []) != BRANCHES + 1:
        raise RuntimeError(f"pipeline run ended {run['status']}: {run.get('error')}")
    return elapsed


def run(quick: bool, out: Path) -> dict[str, Any]:
    runs, warmup = (2, 1) if quick else (10, 2)
    parallel, sequential, cpu = [], [], 0.0
    with FakeOpenAIProcess(latency_ms=LATENCY_MS, terminate_after=1, log=out / "pipeline-model.log") as model:
        with Server(out / "pipeline-server") as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
            wide = create_sessions(client, create_workflow(client, pipeline_spec(model.base_url, max_parallel=5)),
                                   warmup + runs)
            narrow = create_sessions(client, create_workflow(client, pipeline_spec(model.base_url, max_parallel=1)),
                                     warmup + runs)
            for session_id in wide[:warmup] + narrow[:warmup]:
                post_and_wait(client, session_id)
            for wide_id, narrow_id in zip(wide[warmup:], narrow[warmup:], strict=True):
                cpu0 = tree_cpu_s(server.pid)
                parallel.append(post_and_wait(client, wide_id))
                cpu += tree_cpu_s(server.pid) - cpu0
                sequential.append(post_and_wait(client, narrow_id))
        library = run_json(["-m", "bench.pipeline_library", "--base-url", model.base_url, "--runs", str(runs),
                            "--warmup", str(warmup)], timeout_s=600, log=out / "pipeline-library.log")
    p_med, s_med, l_med = median(parallel), median(sequential), median(library["run_walls"])
    steps = runs * (BRANCHES + 1)
    service_ms, library_ms = cpu / steps * 1000, library["cpu_s"] / library["calls"] * 1000
    figures = {"runs": runs, "latency_ms": LATENCY_MS, "parallel_median_s": p_med, "sequential_median_s": s_med,
               "library_median_s": l_med, "vs_sequential": p_med / s_med, "vs_library": p_med / l_med,
               "service_cpu_ms_per_step": service_ms, "library_cpu_ms_per_call": library_ms,
               "overhead_cpu_ms_per_step": service_ms - library_ms,
               "met_vs_sequential": p_med / s_med <= TARGET_VS_SEQUENTIAL,
               "met_vs_library": p_med / l_med <= TARGET_VS_LIBRARY}
    md = [
        f"Pipeline: {BRANCHES} independent steps (prompt modules, inputs `task`) joined by a fifth; every step on "
        f"provider `openai` at the fake server (own process, {LATENCY_MS} ms per call). Service: `POST "
        "/messages?wait=true` to `python -m autobots serve` (SQLite), the `max_parallel: 5` and `max_parallel: 1` "
        f"pipelines alternating, {runs} runs each after {warmup} warm-up(s); CPU of the server and its run workers "
        "during the parallel runs. Library floor: `bench/pipeline_library.py`, the same five calls with asyncio.",
        "",
        "| | median run (s) | ratio |",
        "|---|---:|---:|",
        f"| service, ready steps at once | {fmt(p_med, 3)} | |",
        f"| service, one step after another | {fmt(s_med, 3)} | **{fmt(p_med / s_med)}×** (target ≤ "
        f"{TARGET_VS_SEQUENTIAL}×; 0.40× is the floor: two calls on the critical path against five) |",
        f"| library floor (asyncio) | {fmt(l_med, 3)} | **{fmt(p_med / l_med)}×** (target ≤ {TARGET_VS_LIBRARY}×) |",
        "",
        f"CPU per step: service {fmt(service_ms)} ms, library {fmt(library_ms)} ms per agent call: the service's "
        f"overhead is **{fmt(service_ms - library_ms)} ms of CPU per step** (the POST, the run's claim and "
        "journal, step events committed before dependants start, the checkpoint written with each finished step).",
    ]
    return {"title": "7. Pipelines", "figures": figures, "markdown": "\n".join(md)}
