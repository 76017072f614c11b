"""9. Router (simulation): the routing policies on the simulated pool, as `python -m autobots router simulate`.

No service and no model: the router library against `src/router/simulated_pool.json`. Full mode runs the
default seed and task count (the figures the command prints), writes `bench/router_regret.png` and checks how
often the bars hold over other seeds; quick mode runs fewer sub-tasks and writes the plot under the raw outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autobots.router import simulation

from bench._common import BENCH

QUICK_TASKS = 400
OTHER_SEEDS = range(40)


def pool_table(pool: simulation.Pool) -> list[str]:
    rows = ["| model | cost per call (¢, mean) | latency (s, median) | quality prior | "
            + " | ".join(f"success: {kind}" for kind in pool.kinds) + " |",
            "|---|---:|---:|---:|" + "---:|" * len(pool.kinds)]
    for m in pool.models:
        rows.append(f"| {m.model} | {m.cost_cents:g} | {m.latency_median_s:g} | {m.quality:g} | "
                    + " | ".join(f"{m.success[kind]:g}" for kind in pool.kinds) + " |")
    return rows


def run(quick: bool, out: Path) -> dict[str, Any]:
    tasks = QUICK_TASKS if quick else simulation.DEFAULT_TASKS
    report = simulation.simulate(tasks=tasks)
    plot = out / "router_regret.png" if quick else BENCH / "router_regret.png"
    simulation.plot_regret(report, plot)
    figures = report.figures()
    md = [
        f"The router library (`src/router/`) on the simulated pool `src/router/simulated_pool.json`: {tasks} "
        f"sub-tasks of uniformly drawn kinds, seed {report.seed}, every policy meeting the same outcomes (success "
        "Bernoulli, cost and latency lognormal) and learning online from `reward` with the default weights "
        f"(α {report.weights.alpha:g}, β {report.weights.beta:g} per cent, γ {report.weights.gamma:g} per second); "
        f"thompson's exploration floor {report.explore:g}. Regret is in expected reward against the oracle "
        f"({', '.join(f'{kind}: {model}' for kind, model in report.oracle.items())}). Reproduce with "
        f"`python -m autobots router simulate --seed {report.seed} --tasks {tasks} --plot`.",
        "",
        *pool_table(simulation.load_pool()),
        "",
        *report.table(),
        "",
        *(f"- {line}" for line in report.bars()),
    ]
    if not quick:
        others = [simulation.simulate(seed=seed, policies=("best", "thompson")) for seed in OTHER_SEEDS]
        both = sum(r.cost_bar_met and r.regret_bar_met for r in others)
        figures["other_seeds"] = {"seeds": len(others), "both_bars_met": both,
                                  "cost_bar_met": sum(r.cost_bar_met for r in others),
                                  "regret_bar_met": sum(r.regret_bar_met for r in others)}
        md += ["", f"Over seeds {OTHER_SEEDS.start}–{OTHER_SEEDS.stop - 1}: both bars met with {both} of "
               f"{len(others)} ({figures['other_seeds']['cost_bar_met']} the cost bar, "
               f"{figures['other_seeds']['regret_bar_met']} the regret bar). The regret bar is the fragile one: "
               "the exploration floor adds regret at a constant rate, so a run that learns fast in its first half "
               "has less first-half regret to set the second half against.",
               "", "![cumulative regret per policy](router_regret.png)"]
    return {"title": "9. Router (simulation)", "figures": figures, "markdown": "\n".join(md)}
