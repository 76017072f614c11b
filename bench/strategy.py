"""8. Strategies: CPU per model turn of a two-state strategy against a round robin of the same two agents.

Both run through the service on the same fake model (0 ms latency, never says TERMINATE): the strategy alternates
`a` and `b` with `otherwise` transitions until `max_steps`, the round robin until `max_messages`, so both make the
same number of model turns with conversations of the same length. The difference per turn is what a transition
costs: the selector's conditions, the durable transition event and the record written with it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import MODEL, TASK, Server, create_sessions, create_workflow, fmt, median, tree_cpu_s
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.specs import two_assistants_spec

TURNS = 20
TARGET = 1.1


def strategy_spec(base_url: str, turns: int) -> dict[str, Any]:
    return {"name": "bench-strategy", "type": "strategy",
            "models": {"default": {"provider": "openai", "model": MODEL, "base_url": base_url}},
            "agents": [{"name": "bob"}, {"name": "alice"}],
            "strategy": {"start": "a", "max_steps": turns, "states": {
                "a": {"agent": "bob", "next": [{"when": {"contains": "TERMINATE-NEVER"}, "to": "END"},
                                               {"otherwise": True, "to": "b"}]},
                "b": {"agent": "alice", "next": [{"when": {"regex": "^DONE$"}, "to": "END"},
                                                 {"otherwise": True, "to": "a"}]}}}}


def measure(client: httpx.Client, server: Server, sessions: list[str]) -> tuple[list[float], float]:
    walls, cpu = [], 0.0
    for session_id in sessions:
        cpu0, started = tree_cpu_s(server.pid), time.perf_counter()
        response = client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                               json={"content": TASK})
        response.raise_for_status()
        if response.json()["run"]["status"] != "incomplete":
            raise RuntimeError(f"run ended {response.json()['run']['status']}: {response.json()['run']['error']}")
        walls.append(time.perf_counter() - started)
        cpu += tree_cpu_s(server.pid) - cpu0
    return walls, cpu


def run(quick: bool, out: Path) -> dict[str, Any]:
    runs, warmup, rounds = (2, 1, 1) if quick else (6, 2, 3)
    strategy_cpu = robin_cpu = 0.0
    strategy_walls: list[float] = []
    robin_walls: list[float] = []
    with FakeOpenAIProcess(latency_ms=0, terminate_after=None, log=out / "strategy-model.log") as model:
        with Server(out / "strategy-server") as server, httpx.Client(base_url=server.base_url, timeout=120) as client:
            strategy = create_sessions(client, create_workflow(client, strategy_spec(model.base_url, TURNS)),
                                       warmup + runs * rounds)
            robin = create_sessions(client, create_workflow(client, two_assistants_spec(
                model.base_url, max_messages=TURNS, name="bench-round-robin")), warmup + runs * rounds)
            measure(client, server, strategy[:warmup])
            measure(client, server, robin[:warmup])
            for i in range(rounds):  # alternating, so a drift in the machine's speed weighs on both alike
                chunk = slice(warmup + i * runs, warmup + (i + 1) * runs)
                walls, cpu = measure(client, server, strategy[chunk])
                strategy_walls += walls
                strategy_cpu += cpu
                walls, cpu = measure(client, server, robin[chunk])
                robin_walls += walls
                robin_cpu += cpu
    turns = runs * rounds * TURNS
    s_turn, r_turn = strategy_cpu / turns * 1000, robin_cpu / turns * 1000
    ratio = s_turn / r_turn
    figures = {"turns_per_run": TURNS, "runs": runs * rounds, "strategy_cpu_ms_per_turn": s_turn,
               "round_robin_cpu_ms_per_turn": r_turn, "cpu_ratio": ratio,
               "transition_cpu_ms": s_turn - r_turn, "strategy_median_s": median(strategy_walls),
               "round_robin_median_s": median(robin_walls), "target": TARGET, "met": ratio <= TARGET}
    md = [
        f"Two agents, {TURNS} model turns per run, fake model at 0 ms; strategy (`a` ⇄ `b`, a `contains` and a "
        f"`regex` condition before `otherwise`, `max_steps: {TURNS}`) against the round robin of the same agents "
        f"(`max_messages: {TURNS}`), {runs * rounds} runs each in {rounds} alternating rounds after {warmup} "
        "warm-up(s). CPU of the server and its run workers.",
        "",
        "| | CPU per model turn (ms) | median run (s) |",
        "|---|---:|---:|",
        f"| strategy | {fmt(s_turn)} | {fmt(median(strategy_walls), 3)} |",
        f"| round robin | {fmt(r_turn)} | {fmt(median(robin_walls), 3)} |",
        "",
        f"Ratio **{fmt(ratio)}×** (target ≤ {TARGET}×: **{'met' if ratio <= TARGET else 'missed'}**); a transition "
        f"(selector, parsing, the durable event and record) costs {fmt(s_turn - r_turn)} ms of CPU beyond a turn.",
    ]
    return {"title": "8. Strategies", "figures": figures, "markdown": "\n".join(md)}
