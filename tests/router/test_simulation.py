"""The offline simulation of the router (`python -m autobots router simulate`) and its bars."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from autobots.__main__ import main
from autobots.router import RewardWeights
from autobots.router.simulation import DEFAULT_SEED, Report, load_pool, simulate

WEIGHTS = RewardWeights()


@pytest.fixture(scope="module")
def default_report() -> Report:
    return simulate()


class TestPool:
    def test_packaged_pool_is_honest(self) -> None:
        pool = load_pool()
        assert len(pool.models) >= 3
        assert set(pool.kinds) >= {"research", "code", "write", "math"}
        strongest = max(pool.models, key=lambda m: m.cost_cents)
        for kind in pool.kinds:
            # The most expensive model succeeds most often on every kind...
            assert strongest.success[kind] == max(m.success[kind] for m in pool.models), kind
        # ...but is not worth its price everywhere: routing has something to gain, and something to learn.
        oracle = {kind: pool.oracle(kind, WEIGHTS).model for kind in pool.kinds}
        assert strongest.model in oracle.values()
        assert len(set(oracle.values())) >= 2

    def test_success_must_cover_the_kinds(self, tmp_path: Path) -> None:
        path = tmp_path / "pool.json"
        path.write_text('{"kinds": ["a", "b"], "models": [{"model": "m", "cost_cents": 1, "cost_sigma": 0.1, '
                        '"latency_median_s": 1, "latency_sigma": 0.1, "quality": 0.5, "success": {"a": 0.5}}]}')
        with pytest.raises(ValueError, match="exactly the kinds"):
            load_pool(path)


class TestSimulate:
    def test_deterministic_for_a_seed(self) -> None:
        first, second = simulate(seed=3, tasks=300), simulate(seed=3, tasks=300)
        assert first.figures() == second.figures()
        assert first.results["thompson"].cumulative_regret == second.results["thompson"].cumulative_regret
        assert simulate(seed=4, tasks=300).figures() != first.figures()

    def test_every_policy_meets_the_same_subtasks(self, default_report: Report) -> None:
        counts = {policy: {kind: sum(picks.values()) for kind, picks in r.picks.items()}
                  for policy, r in default_report.results.items()}
        assert len({tuple(sorted(c.items())) for c in counts.values()}) == 1
        assert sum(counts["best"].values()) == default_report.tasks == 2000

    def test_baselines_do_what_they_say(self, default_report: Report) -> None:
        pool = load_pool()
        picked = {policy: {model for picks in r.picks.values() for model, n in picks.items() if n}
                  for policy, r in default_report.results.items()}
        assert picked["fixed"] == {pool.models[0].model}
        assert picked["cheapest"] == {min(pool.models, key=lambda m: m.cost_cents).model}
        assert picked["best"] == {max(pool.models, key=lambda m: m.quality).model}
        assert picked["thompson"] == {m.model for m in pool.models}

    def test_default_seed_meets_both_bars(self, default_report: Report) -> None:
        assert default_report.seed == DEFAULT_SEED
        assert default_report.success_ratio >= 0.95
        assert default_report.cost_ratio <= 0.5
        assert default_report.regret_ratio <= 0.5
        assert default_report.cost_bar_met and default_report.regret_bar_met
        thompson = default_report.results["thompson"]
        assert thompson.regret < min(r.regret for p, r in default_report.results.items() if p != "thompson")

    def test_no_baseline_meets_the_cost_bar(self, default_report: Report) -> None:
        best = default_report.results["best"]
        for policy in ("fixed", "cheapest"):
            result = default_report.results[policy]
            assert result.mean_success / best.mean_success < 0.95, policy

    def test_learns_the_oracle_despite_a_misleading_prior_and_no_exploration(self) -> None:
        pool = load_pool()
        # The operator's prior upside down: the cheapest model rated best, the strongest worst.
        ranked = sorted(pool.models, key=lambda m: m.cost_cents)
        quality = {m.model: 1.0 - i / (len(ranked) - 1) for i, m in enumerate(ranked)}
        misleading = replace(pool, models=tuple(replace(m, quality=quality[m.model]) for m in pool.models))
        report = simulate(pool=misleading, explore=0.0, policies=("best", "thompson"))
        regret = report.results["thompson"].cumulative_regret
        # What picking at random loses per sub-task, on average over the kinds.
        uniform = sum(pool.oracle(kind, WEIGHTS).expected_reward(kind, WEIGHTS) - m.expected_reward(kind, WEIGHTS)
                      for kind in pool.kinds for m in pool.models) / (len(pool.kinds) * len(pool.models))
        first_quarter, last_quarter = regret[499], regret[-1] - regret[-501]
        # No exploration floor to pay for, so what regret is left is the learning's, and it fades.
        assert last_quarter <= 0.5 * first_quarter
        assert last_quarter / 500 < 0.15 * uniform
        assert report.results["thompson"].explored == 3 * len(pool.kinds)  # only the first tries

    def test_too_few_tasks(self) -> None:
        with pytest.raises(ValueError, match="at least 2"):
            simulate(tasks=1)


class TestCommand:
    def test_default_run_meets_the_bars_and_plots(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        plot = tmp_path / "regret.png"
        assert main(["router", "simulate", "--plot", str(plot)]) == 0
        out = capsys.readouterr().out
        for policy in ("fixed", "cheapest", "best", "thompson"):
            assert f"| {policy} |" in out
        assert "cost bar:" in out and "regret bar:" in out and "MISSED" not in out
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_exit_code_follows_the_bars(self, capsys: pytest.CaptureFixture[str]) -> None:
        report = simulate(seed=0, tasks=200)  # too few sub-tasks to learn from
        assert not (report.cost_bar_met and report.regret_bar_met)
        assert main(["router", "simulate", "--seed", "0", "--tasks", "200"]) == 1
        assert "MISSED" in capsys.readouterr().out

    def test_bad_task_count(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert main(["router", "simulate", "--tasks", "1"]) == 2
        assert "at least 2 sub-tasks" in capsys.readouterr().err
