"""Offline evaluation of the routing policies on a simulated pool (`python -m autobots router simulate`).

The pool (`simulated_pool.json`) gives each model a price, a latency distribution and a success probability
per sub-task kind. Sub-tasks of uniformly drawn kinds arrive one at a time; each policy picks a model, the
outcome is sampled (success Bernoulli, cost and latency lognormal) and the policy learns from its `reward`.
Every policy meets the same world: the outcome every model would have had on every sub-task is drawn once
from the seed, so the policies differ only by their picks.

Regret is against the oracle that knows, per kind, the model of highest expected reward, and is counted in
expectation (the expected reward of the oracle's model minus the chosen model's), so it measures the picks
and not the luck of the draws.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from autobots.router._policies import POLICIES, Candidate, Policy, choose
from autobots.router._stats import ArmStats, RewardWeights, reward

DEFAULT_SEED = 17
DEFAULT_TASKS = 2000
DEFAULT_EXPLORE = 0.05
DEFAULT_PLOT = Path("bench/router_regret.png")
# The bars thompson must meet against `best` and against itself.
MIN_SUCCESS_RATIO = 0.95
MAX_COST_RATIO = 0.5
MAX_REGRET_RATIO = 0.5


@dataclass(frozen=True)
class SimulatedModel:
    """One model of the simulated pool: what it costs, how long it takes, how often it succeeds per kind."""

    model: str
    cost_cents: float
    cost_sigma: float
    latency_median_s: float
    latency_sigma: float
    quality: float
    success: Mapping[str, float]

    @property
    def mean_latency_s(self) -> float:
        return self.latency_median_s * math.exp(self.latency_sigma**2 / 2)

    def expected_reward(self, kind: str, weights: RewardWeights) -> float:
        return (weights.alpha * self.success[kind] - weights.beta * self.cost_cents
                - weights.gamma * self.mean_latency_s)

    def draw(self, kind: str, rng: random.Random) -> tuple[float, float, float]:
        """One outcome on a sub-task of `kind`: (success, cost in cents, latency in seconds)."""
        success = 1.0 if rng.random() < self.success[kind] else 0.0
        # Lognormal around the mean price (longer answers cost more), and around the median latency.
        cost = self.cost_cents * rng.lognormvariate(-self.cost_sigma**2 / 2, self.cost_sigma)
        latency = rng.lognormvariate(math.log(self.latency_median_s), self.latency_sigma)
        return success, cost, latency


@dataclass(frozen=True)
class Pool:
    """The simulated models (in the operator's order; the first is `fixed`'s) and the sub-task kinds."""

    kinds: tuple[str, ...]
    models: tuple[SimulatedModel, ...]

    def __post_init__(self) -> None:
        if not self.kinds or not self.models:
            raise ValueError("a pool needs kinds and models")
        for model in self.models:
            if set(model.success) != set(self.kinds):
                raise ValueError(f"{model.model}: success must be given for exactly the kinds {list(self.kinds)}")
            if not all(0.0 <= p <= 1.0 for p in model.success.values()):
                raise ValueError(f"{model.model}: success probabilities must be in [0, 1]")

    @property
    def candidates(self) -> list[Candidate]:
        return [Candidate(model=m.model, cost_per_call_cents=m.cost_cents, quality=m.quality) for m in self.models]

    def oracle(self, kind: str, weights: RewardWeights) -> SimulatedModel:
        """The model of highest expected reward on `kind`."""
        return max(self.models, key=lambda m: m.expected_reward(kind, weights))


def load_pool(path: Path | None = None) -> Pool:
    """The pool in `path`, by default the packaged `simulated_pool.json`."""
    if path is None:
        text = resources.files("autobots.router").joinpath("simulated_pool.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    models = tuple(SimulatedModel(
        model=m["model"], cost_cents=float(m["cost_cents"]), cost_sigma=float(m["cost_sigma"]),
        latency_median_s=float(m["latency_median_s"]), latency_sigma=float(m["latency_sigma"]),
        quality=float(m["quality"]), success={k: float(p) for k, p in m["success"].items()}) for m in data["models"])
    return Pool(kinds=tuple(data["kinds"]), models=models)


@dataclass(frozen=True)
class PolicyResult:
    """How one policy did over the simulated sub-tasks."""

    policy: Policy
    mean_success: float
    total_cost_cents: float
    mean_latency_s: float
    cumulative_regret: tuple[float, ...]  # after each sub-task
    picks: dict[str, dict[str, int]]  # kind -> model -> times picked
    explored: int  # picks that were exploration (first tries and the exploration floor)

    @property
    def regret(self) -> float:
        return self.cumulative_regret[-1]

    @property
    def regret_first_half(self) -> float:
        return self.cumulative_regret[len(self.cumulative_regret) // 2 - 1]

    @property
    def regret_second_half(self) -> float:
        return self.regret - self.regret_first_half

    def to_dict(self) -> dict[str, Any]:
        return {"mean_success": self.mean_success, "total_cost_cents": self.total_cost_cents,
                "mean_latency_s": self.mean_latency_s, "regret": self.regret,
                "regret_first_half": self.regret_first_half, "regret_second_half": self.regret_second_half,
                "picks": self.picks, "explored": self.explored}


@dataclass(frozen=True)
class Report:
    """Every policy's result and thompson's bars."""

    seed: int
    tasks: int
    explore: float
    weights: RewardWeights
    results: dict[Policy, PolicyResult]
    oracle: dict[str, str]  # kind -> model

    @property
    def success_ratio(self) -> float:
        """thompson's mean success over best's."""
        return self.results["thompson"].mean_success / self.results["best"].mean_success

    @property
    def cost_ratio(self) -> float:
        """thompson's total cost over best's."""
        return self.results["thompson"].total_cost_cents / self.results["best"].total_cost_cents

    @property
    def regret_ratio(self) -> float:
        """thompson's regret over the second half of the sub-tasks over its regret over the first half."""
        thompson = self.results["thompson"]
        return thompson.regret_second_half / thompson.regret_first_half if thompson.regret_first_half else math.inf

    @property
    def cost_bar_met(self) -> bool:
        return self.success_ratio >= MIN_SUCCESS_RATIO and self.cost_ratio <= MAX_COST_RATIO

    @property
    def regret_bar_met(self) -> bool:
        return self.regret_ratio <= MAX_REGRET_RATIO

    def figures(self) -> dict[str, Any]:
        """The report as JSON-serialisable figures."""
        return {"seed": self.seed, "tasks": self.tasks, "explore": self.explore,
                "weights": {"alpha": self.weights.alpha, "beta": self.weights.beta, "gamma": self.weights.gamma},
                "oracle": self.oracle, "policies": {p: r.to_dict() for p, r in self.results.items()},
                "success_ratio": self.success_ratio, "cost_ratio": self.cost_ratio,
                "regret_ratio": self.regret_ratio, "cost_bar_met": self.cost_bar_met,
                "regret_bar_met": self.regret_bar_met}

    def table(self) -> list[str]:
        """A markdown table of the policies against `best`."""
        best = self.results["best"]
        half = self.tasks // 2
        rows = [f"| policy | mean success | vs best | total cost ($) | vs best | cost reduction | mean latency (s) | "
                f"regret | regret 1-{half} | regret {half + 1}-{self.tasks} |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for policy, r in self.results.items():
            cost_ratio = r.total_cost_cents / best.total_cost_cents
            rows.append(f"| {policy} | {r.mean_success:.3f} | {r.mean_success / best.mean_success:.1%} | "
                        f"{r.total_cost_cents / 100:.2f} | {cost_ratio:.1%} | {1 - cost_ratio:.1%} | "
                        f"{r.mean_latency_s:.1f} | {r.regret:.1f} | {r.regret_first_half:.1f} | "
                        f"{r.regret_second_half:.1f} |")
        return rows

    def bars(self) -> list[str]:
        """thompson's two bars, each with its figures and whether it is met."""
        half = self.tasks // 2
        return [
            f"cost bar: thompson's mean success is {self.success_ratio:.1%} of best's (needs >= "
            f"{MIN_SUCCESS_RATIO:.0%}) at {self.cost_ratio:.1%} of its total cost (needs <= {MAX_COST_RATIO:.0%}): "
            f"{'met' if self.cost_bar_met else 'MISSED'}",
            f"regret bar: thompson's regret over sub-tasks {half + 1}-{self.tasks} is {self.regret_ratio:.2f}x "
            f"its regret over 1-{half} (needs <= {MAX_REGRET_RATIO}x): {'met' if self.regret_bar_met else 'MISSED'}",
        ]


def simulate(*, seed: int = DEFAULT_SEED, tasks: int = DEFAULT_TASKS, pool: Pool | None = None,
             explore: float = DEFAULT_EXPLORE, weights: RewardWeights = RewardWeights(),
             policies: Sequence[Policy] = POLICIES) -> Report:
    """Run each policy over the same `tasks` simulated sub-tasks, learning online.

    Raises:
        ValueError: fewer than 2 tasks, or `policies` without `best` and `thompson` (the bars compare them).
    """
    if tasks < 2:
        raise ValueError("the simulation needs at least 2 sub-tasks")
    if not {"best", "thompson"} <= set(policies):
        raise ValueError("the simulation compares thompson with best: both must be among the policies")
    pool = pool or load_pool()
    world_rng = random.Random(seed)
    kinds = [world_rng.choice(pool.kinds) for _ in range(tasks)]
    # What every model would have done on every sub-task, drawn once: all policies meet the same world.
    world = [{m.model: m.draw(kind, world_rng) for m in pool.models} for kind in kinds]
    oracle = {kind: pool.oracle(kind, weights) for kind in pool.kinds}
    gap = {kind: {m.model: oracle[kind].expected_reward(kind, weights) - m.expected_reward(kind, weights)
                  for m in pool.models} for kind in pool.kinds}
    results = {policy: _run_policy(policy, pool, kinds, world, gap, random.Random(f"{seed}/{policy}"), explore,
                                   weights) for policy in policies}
    return Report(seed=seed, tasks=tasks, explore=explore, weights=weights, results=results,
                  oracle={kind: m.model for kind, m in oracle.items()})


def _run_policy(policy: Policy, pool: Pool, kinds: list[str], world: list[dict[str, tuple[float, float, float]]],
                gap: dict[str, dict[str, float]], rng: random.Random, explore: float,
                weights: RewardWeights) -> PolicyResult:
    candidates = pool.candidates
    stats: dict[str, dict[str, ArmStats]] = {kind: {} for kind in pool.kinds}
    picks = {kind: {m.model: 0 for m in pool.models} for kind in pool.kinds}
    success_sum = cost_sum = latency_sum = regret = 0.0
    cumulative: list[float] = []
    explored = 0
    for kind, outcomes in zip(kinds, world, strict=True):
        choice = choose(policy, candidates, stats[kind], rng=rng, explore=explore, weights=weights)
        success, cost, latency = outcomes[choice.model]
        arm = stats[kind].get(choice.model, ArmStats())
        stats[kind][choice.model] = arm.updated(reward=reward(success, cost, latency, weights), success=success,
                                                cost_cents=cost, latency_s=latency)
        picks[kind][choice.model] += 1
        explored += choice.explored
        success_sum += success
        cost_sum += cost
        latency_sum += latency
        regret += gap[kind][choice.model]
        cumulative.append(regret)
    return PolicyResult(policy=policy, mean_success=success_sum / len(kinds), total_cost_cents=cost_sum,
                        mean_latency_s=latency_sum / len(kinds), cumulative_regret=tuple(cumulative), picks=picks,
                        explored=explored)


def plot_regret(report: Report, path: Path, *, window: int = 200) -> None:
    """Write a PNG to `path`: each policy's cumulative regret, and its regret per sub-task over a moving window."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (total, rate) = pyplot.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    try:
        steps = range(1, report.tasks + 1)
        window = max(1, min(window, report.tasks // 2))
        for policy, result in report.results.items():
            regret = result.cumulative_regret
            total.plot(steps, regret, label=f"{policy} ({result.regret:.0f})")
            moving = [(regret[i] - (regret[i - window] if i >= window else 0.0)) / min(i + 1, window)
                      for i in range(report.tasks)]
            rate.plot(steps[window - 1:], moving[window - 1:], label=policy)
        total.set_title("cumulative regret against the oracle")
        total.set_ylabel("expected reward lost")
        total.legend(loc="upper left")
        rate.set_title(f"regret per sub-task, mean of the last {window}")
        rate.set_yscale("log")
        for axes in (total, rate):
            axes.axvline(report.tasks // 2, color="grey", linewidth=0.8, linestyle=":")
            axes.set_xlabel("sub-task")
            axes.set_xlim(0, report.tasks)
            axes.grid(alpha=0.3)
        total.set_ylim(bottom=0)
        figure.suptitle(f"Router on the simulated pool (seed {report.seed}, explore {report.explore})")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        # No software version in the file: the same report gives the same bytes.
        figure.savefig(path, format="png", metadata={"Software": None})
    finally:
        pyplot.close(figure)


def run_command(*, seed: int = DEFAULT_SEED, tasks: int = DEFAULT_TASKS, plot: Path | None = None) -> int:
    """`router simulate`: print the table and the bars; 0 when both bars are met, 1 otherwise, 2 on bad input."""
    try:
        report = simulate(seed=seed, tasks=tasks)
    except ValueError as exc:
        print(f"autobots: {exc}", file=sys.stderr)
        return 2
    print(f"router simulation: {report.tasks} sub-tasks, seed {report.seed}, explore {report.explore}, "
          f"oracle {', '.join(f'{k}: {m}' for k, m in report.oracle.items())}")
    print()
    print("\n".join(report.table()))
    print()
    print("\n".join(report.bars()))
    if plot is not None:
        plot_regret(report, plot)
        print(f"wrote {plot}")
    return 0 if report.cost_bar_met and report.regret_bar_met else 1
