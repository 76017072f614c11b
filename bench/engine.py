"""1. Engine overhead: a 20-message run through the service (POST ?wait=true) vs team.run() in a script."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    TASK,
    FakeModel,
    Server,
    create_sessions,
    create_workflow,
    fmt,
    median,
    run_json,
    tree_cpu_s,
    workflow_spec,
)

MESSAGES = 20
TARGET = 1.25
ROUNDS = 3


def post_and_wait(client: httpx.Client, session_id: str, expected: int) -> float:
    started = time.perf_counter()
    response = client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                           json={"content": TASK})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    if body["run"]["status"] != "completed":
        raise RuntimeError(f"run ended {body['run']['status']}: {body['run'].get('error')}")
    got = len(body["reply"]["metadata"]["messages"])
    if got != expected:
        raise RuntimeError(f"expected {expected} agent messages, got {got}")
    return elapsed


def service_runs(client: httpx.Client, server: Server, sessions: list[str]) -> dict[str, Any]:
    cpu0, wall0 = tree_cpu_s(server.pid), time.perf_counter()
    walls = [post_and_wait(client, session_id, MESSAGES) for session_id in sessions]
    wall, cpu = time.perf_counter() - wall0, tree_cpu_s(server.pid) - cpu0
    return {"run_walls": walls, "wall_s": wall, "cpu_s": cpu, "turns": len(sessions) * MESSAGES}


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"run_walls": [w for p in parts for w in p["run_walls"]], "wall_s": sum(p["wall_s"] for p in parts),
            "cpu_s": sum(p["cpu_s"] for p in parts), "turns": sum(p["turns"] for p in parts)}


def run(quick: bool, out: Path) -> dict[str, Any]:
    runs, warmup, rounds = (2, 1, 1) if quick else (30, 3, ROUNDS)
    per_round = runs // rounds
    services, libraries = [], []
    with FakeModel(latency_ms=0, log=out / "engine-model.log") as model:
        with Server(out / "engine-server") as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
            workflow = create_workflow(client, workflow_spec(model.base_url, MESSAGES))
            sessions = create_sessions(client, workflow, warmup + per_round * rounds)
            for session_id in sessions[:warmup]:
                post_and_wait(client, session_id, MESSAGES)
            # Service and library alternate, so a drift in the machine's speed weighs on both alike.
            for i in range(rounds):
                chunk = sessions[warmup + i * per_round:warmup + (i + 1) * per_round]
                services.append(service_runs(client, server, chunk))
                libraries.append(run_json(
                    ["-m", "bench.library_run", "--base-url", model.base_url, "--runs", str(per_round),
                     "--messages", str(MESSAGES), "--warmup", str(warmup)],
                    timeout_s=300, log=out / f"engine-library-{i}.log"))
    service, library = merged(services), merged(libraries)
    runs = per_round * rounds
    s_med, l_med = median(service["run_walls"]), median(library["run_walls"])
    ratio = s_med / l_med
    s_cpu_turn = service["cpu_s"] / service["turns"] * 1000
    l_cpu_turn = library["cpu_s"] / library["turns"] * 1000
    figures = {
        "runs": runs, "messages_per_run": MESSAGES,
        "service_median_s": s_med, "library_median_s": l_med, "wall_ratio": ratio,
        "service_cpu_ms_per_turn": s_cpu_turn, "library_cpu_ms_per_turn": l_cpu_turn,
        "cpu_ratio": s_cpu_turn / l_cpu_turn, "target": TARGET, "met": ratio <= TARGET,
        "service": service, "library": library,
    }
    md = [
        f"Workflow: two assistants, round robin, ended only by `max_messages={MESSAGES}`; model: provider `openai` "
        f"at the fake server (own process, 0 ms latency). {runs} measured runs after {warmup} warm-up run(s), "
        f"one after the other, in {rounds} alternating round(s) of {per_round} service runs then {per_round} "
        "library runs (a fresh library process each round, after its own warm-up). Service: `POST /api/v1/sessions/{id}/messages?wait=true` over HTTP to "
        "`python -m autobots serve` (temporary SQLite, `AUTOBOTS_SANDBOX=none`, default log level INFO); "
        "service CPU read from `/proc/<pid>/stat` of the server process and its run workers. "
        "Library: `bench/library_run.py`, "
        "the same `RoundRobinGroupChat.run()` with `OpenAIChatCompletionClient` in a plain script.",
        "",
        "| | service | library | ratio |",
        "|---|---:|---:|---:|",
        f"| wall time per run, median (s) | {fmt(s_med, 3)} | {fmt(l_med, 3)} | **{fmt(ratio)}×** |",
        f"| CPU per model turn (ms) | {fmt(s_cpu_turn)} | {fmt(l_cpu_turn)} | {fmt(s_cpu_turn / l_cpu_turn)}× |",
        f"| total wall for {runs} runs (s) | {fmt(service['wall_s'], 3)} | {fmt(library['wall_s'], 3)} | |",
        "",
        f"Target ≤ {TARGET}×: **{'met' if ratio <= TARGET else 'missed'}**.",
    ]
    return {"title": "1. Engine overhead", "figures": figures, "markdown": "\n".join(md)}
