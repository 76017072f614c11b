"""1. Engine overhead: a 20-message run through the service (POST ?wait=true) vs team.run() in a script."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    TASK,
    Server,
    create_sessions,
    create_workflow,
    fmt,
    median,
    run_json,
    tree_cpu_s,
    wait_until_started,
)
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.specs import two_assistants_spec

MESSAGES = 20
TARGET = 1.25
ROUNDS = 5
RUNS_PER_ROUND = 8
WARMUP = 3


def post_and_wait(client: httpx.Client, session_id: str, expected: int) -> float:
    started = time.perf_counter()
    response = client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                           json={"content": TASK})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    body = response.json()
    if body["run"]["status"] != "incomplete":  # ended by its message limit, as the library's run is
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


def round_figures(service: dict[str, Any], library: dict[str, Any]) -> dict[str, Any]:
    """One round: the median service run against the median library run measured right after it."""
    s_med, l_med = median(service["run_walls"]), median(library["run_walls"])
    return {"service_median_s": s_med, "library_median_s": l_med, "ratio": s_med / l_med,
            "service_cpu_s": service["cpu_s"], "library_cpu_s": library["cpu_s"]}


def run(quick: bool, out: Path) -> dict[str, Any]:
    per_round, warmup, rounds = (2, 1, 1) if quick else (RUNS_PER_ROUND, WARMUP, ROUNDS)
    services, libraries = [], []
    with FakeOpenAIProcess(latency_ms=0, terminate_after=None, log=out / "engine-model.log") as model:
        with Server(out / "engine-server") as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
            workflow = create_workflow(client, two_assistants_spec(model.base_url, max_messages=MESSAGES))
            sessions = create_sessions(client, workflow, warmup + per_round * rounds)
            # The run workers start after the server answers; the first round must not count their start-up.
            wait_until_started(server.pid)
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
    per_round_figures = [round_figures(s, lib) for s, lib in zip(services, libraries, strict=True)]
    service, library = merged(services), merged(libraries)
    runs = per_round * rounds
    ratio = median([r["ratio"] for r in per_round_figures])
    s_med, l_med = median(service["run_walls"]), median(library["run_walls"])
    s_cpu_turn = service["cpu_s"] / service["turns"] * 1000
    l_cpu_turn = library["cpu_s"] / library["turns"] * 1000
    figures = {
        "runs": runs, "runs_per_round": per_round, "messages_per_run": MESSAGES,
        "service_median_s": s_med, "library_median_s": l_med, "wall_ratio": ratio,
        "pooled_median_ratio": s_med / l_med, "rounds": per_round_figures,
        "service_cpu_ms_per_turn": s_cpu_turn, "library_cpu_ms_per_turn": l_cpu_turn,
        "cpu_ratio": s_cpu_turn / l_cpu_turn, "target": TARGET, "met": ratio <= TARGET,
        "service": service, "library": library,
    }
    round_rows = [f"| {i + 1} | {fmt(r['service_median_s'], 3)} | {fmt(r['library_median_s'], 3)} | {fmt(r['ratio'])}× |"
                  for i, r in enumerate(per_round_figures)]
    md = [
        f"Workflow: two assistants, round robin, ended only by `max_messages={MESSAGES}`; model: provider `openai` "
        f"at the fake server (own process, 0 ms latency). Service: `POST /api/v1/sessions/{{id}}/messages?wait=true` "
        "over HTTP to `python -m autobots serve` (temporary SQLite, `AUTOBOTS_SANDBOX=none`, default log level "
        "INFO); service CPU read from `/proc/<pid>/stat` of the server process and its run workers. Library: "
        "`bench/library_run.py`, the same `RoundRobinGroupChat.run()` with `OpenAIChatCompletionClient` in a "
        "plain script.",
        "",
        f"Method: once the run workers have finished starting (their CPU goes quiet), {warmup} service warm-up "
        f"run(s), then {rounds} round(s), each {per_round} service runs one after "
        f"the other immediately followed by {per_round} library runs one after the other (a fresh library process "
        f"per round, after its own {warmup} warm-up run(s)); {runs} measured runs per side in all. The machine's "
        "speed drifts over minutes, so each round's ratio compares two sides measured back to back: per round, "
        "the median service run over the median library run. **The headline ratio is the median of the "
        "per-round ratios.**",
        "",
        "| round | service, median run (s) | library, median run (s) | ratio |",
        "|---:|---:|---:|---:|",
        *round_rows,
        "",
        "| | service | library | ratio |",
        "|---|---:|---:|---:|",
        f"| wall time per run (ratio: median of the {rounds} per-round ratios) | | | **{fmt(ratio)}×** |",
        f"| wall time per run, median of all {runs} runs (s) | {fmt(s_med, 3)} | {fmt(l_med, 3)} | "
        f"{fmt(s_med / l_med)}× |",
        f"| CPU per model turn, all rounds (ms) | {fmt(s_cpu_turn)} | {fmt(l_cpu_turn)} | "
        f"{fmt(s_cpu_turn / l_cpu_turn)}× |",
        f"| total wall for {runs} runs (s) | {fmt(service['wall_s'], 3)} | {fmt(library['wall_s'], 3)} | |",
        "",
        f"Target ≤ {TARGET}× (on the median of the per-round ratios): **{'met' if ratio <= TARGET else 'missed'}**. "
        f"Per-round ratios range {fmt(min(r['ratio'] for r in per_round_figures))}–"
        f"{fmt(max(r['ratio'] for r in per_round_figures))}×.",
    ]
    return {"title": "1. Engine overhead", "figures": figures, "markdown": "\n".join(md)}
