"""The router library: reward, arm statistics and each policy's pick."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
from autobots.router import POLICIES, ArmStats, Candidate, RewardWeights, choose, reward

WEIGHTS = RewardWeights()
POOL = [Candidate("medium", 1.5, 0.8), Candidate("small", 0.1, 0.6), Candidate("large", 12.0, 0.9)]


def arm(rewards: list[float], *, success: float = 1.0, cost: float = 1.0, latency: float = 2.0) -> ArmStats:
    stats = ArmStats()
    for value in rewards:
        stats = stats.updated(reward=value, success=success, cost_cents=cost, latency_s=latency)
    return stats


def settled(means: dict[str, float], pulls: int = 400) -> dict[str, ArmStats]:
    """Arms pulled often, with rewards spread +-1 around each mean: the posteriors are narrow."""
    return {model: arm([mean + (1 if i % 2 else -1) for i in range(pulls)]) for model, mean in means.items()}


class TestReward:
    def test_each_term_in_its_unit(self) -> None:
        assert reward(1.0, 0.0, 0.0, WEIGHTS) == pytest.approx(10.0)
        assert reward(0.0, 10.0, 0.0, WEIGHTS) == pytest.approx(-1.0)  # 10 US cents
        assert reward(0.0, 0.0, 100.0, WEIGHTS) == pytest.approx(-1.0)  # 100 seconds
        assert reward(0.5, 3.0, 20.0, WEIGHTS) == pytest.approx(5.0 - 0.3 - 0.2)

    def test_weights(self) -> None:
        assert reward(1.0, 2.0, 3.0, RewardWeights(alpha=1.0, beta=2.0, gamma=3.0)) == pytest.approx(1 - 4 - 9)

    @pytest.mark.parametrize(("success", "cost", "latency"), [
        (1.5, 0.0, 0.0), (-0.1, 0.0, 0.0), (math.nan, 0.0, 0.0), (1.0, -1.0, 0.0), (1.0, 0.0, -1.0),
        (1.0, math.inf, 0.0)])
    def test_out_of_range(self, success: float, cost: float, latency: float) -> None:
        with pytest.raises(ValueError):
            reward(success, cost, latency, WEIGHTS)


class TestArmStats:
    def test_empty_means_are_none(self) -> None:
        stats = ArmStats()
        assert (stats.mean_reward, stats.mean_success, stats.mean_cost, stats.mean_latency) == (None,) * 4

    def test_updated(self) -> None:
        first = ArmStats()
        second = first.updated(reward=8.0, success=1.0, cost_cents=2.0, latency_s=4.0)
        third = second.updated(reward=-2.0, success=0.0, cost_cents=4.0, latency_s=8.0)
        assert first == ArmStats()  # immutable: a new value each time
        assert third == ArmStats(pulls=2, reward_sum=6.0, reward_sq_sum=68.0, success_sum=1.0, cost_sum=6.0,
                                 latency_sum=12.0)
        assert (third.mean_reward, third.mean_success, third.mean_cost, third.mean_latency) == (3.0, 0.5, 3.0, 6.0)
        assert third.reward_ss == pytest.approx(50.0)

    def test_updated_refuses_bad_outcomes(self) -> None:
        with pytest.raises(ValueError):
            ArmStats().updated(reward=1.0, success=2.0, cost_cents=0.0, latency_s=0.0)
        with pytest.raises(ValueError):
            ArmStats().updated(reward=math.nan, success=1.0, cost_cents=0.0, latency_s=0.0)

    def test_corrected_is_as_if_the_outcome_had_been_recorded_so(self) -> None:
        outcome = {"cost_cents": 2.0, "latency_s": 5.0}
        base = ArmStats().updated(reward=9.0, success=1.0, cost_cents=1.0, latency_s=3.0)
        recorded = base.updated(reward=reward(1.0, 2.0, 5.0, WEIGHTS), success=1.0, **outcome)
        fixed = recorded.corrected(old_reward=reward(1.0, 2.0, 5.0, WEIGHTS),
                                   new_reward=reward(0.25, 2.0, 5.0, WEIGHTS), old_success=1.0, new_success=0.25)
        direct = base.updated(reward=reward(0.25, 2.0, 5.0, WEIGHTS), success=0.25, **outcome)
        assert fixed.pulls == direct.pulls == 2
        for name in ("reward_sum", "reward_sq_sum", "success_sum", "cost_sum", "latency_sum"):
            assert getattr(fixed, name) == pytest.approx(getattr(direct, name)), name

    def test_corrected_needs_a_pull(self) -> None:
        with pytest.raises(ValueError, match="no pulls"):
            ArmStats().corrected(old_reward=1.0, new_reward=2.0, old_success=1.0, new_success=0.0)

    def test_corrected_refuses_success_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            arm([1.0]).corrected(old_reward=1.0, new_reward=2.0, old_success=1.0, new_success=1.5)

    def test_serialisation_round_trip(self) -> None:
        stats = arm([8.5, -1.25, 3.0], success=0.5, cost=1.7, latency=12.5)
        data = json.loads(json.dumps(stats.to_dict()))
        assert data == {"pulls": 3, "reward_sum": 10.25, "reward_sq_sum": 82.8125, "success_sum": 1.5,
                        "cost_sum": pytest.approx(5.1), "latency_sum": 37.5}
        assert ArmStats.from_dict(data) == stats

    def test_from_dict_defaults_missing_keys(self) -> None:
        assert ArmStats.from_dict({"pulls": 2, "reward_sum": 3}) == ArmStats(pulls=2, reward_sum=3.0)

    @pytest.mark.parametrize("data", [{"pulls": 1, "mean": 2.0}, {"pulls": -1}, {"pulls": 1.5}, {"pulls": True},
                                      {"reward_sum": "1"}, {"cost_sum": math.inf}])
    def test_from_dict_refuses_bad_data(self, data: dict[str, object]) -> None:
        with pytest.raises(ValueError):
            ArmStats.from_dict(data)


class TestFixedPolicies:
    def test_fixed_takes_the_first(self) -> None:
        choice = choose("fixed", POOL, {}, rng=random.Random(1))
        assert (choice.model, choice.policy, choice.explored) == ("medium", "fixed", False)

    def test_cheapest(self) -> None:
        assert choose("cheapest", POOL, {}, rng=random.Random(1)).model == "small"
        tied = [Candidate("a", 2.0), Candidate("b", 1.0), Candidate("c", 1.0)]
        assert choose("cheapest", tied, {}, rng=random.Random(1)).model == "b"

    def test_best_is_the_highest_quality_whatever_the_statistics(self) -> None:
        stats = settled({"medium": 9.0, "small": 9.5, "large": 1.0})
        assert choose("best", POOL, stats, rng=random.Random(1)).model == "large"

    def test_best_ties_go_to_the_most_expensive(self) -> None:
        tied = [Candidate("a", 2.0, 0.9), Candidate("b", 5.0, 0.9), Candidate("c", 1.0, 0.8)]
        assert choose("best", tied, {}, rng=random.Random(1)).model == "b"

    def test_best_ranks_an_unstated_quality_last(self) -> None:
        pool = [Candidate("unknown", 50.0), Candidate("stated", 1.0, 0.1)]
        assert choose("best", pool, {}, rng=random.Random(1)).model == "stated"
        assert choose("best", [Candidate("x", 1.0), Candidate("y", 3.0)], {}, rng=random.Random(1)).model == "y"

    @pytest.mark.parametrize("policy", ["fixed", "cheapest", "best"])
    def test_estimates_without_a_draw(self, policy: str) -> None:
        stats = {"small": arm([4.0, 6.0])}
        choice = choose(policy, POOL, stats, rng=random.Random(1), explore=1.0)  # type: ignore[arg-type]
        assert set(choice.estimates) == {"medium", "small", "large"}
        assert not choice.explored
        for estimate in choice.estimates.values():
            assert estimate["sample"] == estimate["mean"]
        assert choice.estimates["small"]["pulls"] == 2.0
        assert choice.estimates["medium"]["pulls"] == 0.0


class TestThompson:
    def test_prior_mean_from_quality_and_cost(self) -> None:
        pool = [Candidate("q", 2.0, 0.8), Candidate("none", 3.0)]
        estimates = choose("thompson", pool, {}, rng=random.Random(1)).estimates
        assert estimates["q"]["mean"] == pytest.approx(10 * 0.8 - 0.1 * 2.0)
        assert estimates["none"]["mean"] == pytest.approx(10 * 0.5 - 0.1 * 3.0)  # unstated: a coin flip

    def test_posterior_mean_follows_the_data(self) -> None:
        stats = settled({"medium": 3.0})
        assert choose("thompson", POOL, stats, rng=random.Random(1)).estimates["medium"]["mean"] == pytest.approx(
            3.0, abs=0.05)

    def test_unexplored_arms_are_tried_first(self) -> None:
        stats = settled({"medium": 9.0, "large": 9.5})  # "small" has no pulls and the worst prior
        for seed in range(30):
            choice = choose("thompson", POOL, stats, rng=random.Random(seed), explore=0.0)
            assert (choice.model, choice.explored) == ("small", True)

    def test_every_unexplored_arm_gets_its_turn(self) -> None:
        picks = Counter(choose("thompson", POOL, {}, rng=random.Random(seed)).model for seed in range(60))
        assert set(picks) == {"medium", "small", "large"}

    def test_exploits_a_clearly_better_arm(self) -> None:
        stats = settled({"medium": 6.0, "small": 9.0, "large": 5.0})
        rng = random.Random(7)
        choices = [choose("thompson", POOL, stats, rng=rng, explore=0.0) for _ in range(300)]
        assert {c.model for c in choices} == {"small"}
        assert not any(c.explored for c in choices)

    def test_samples_spread_with_uncertainty(self) -> None:
        few = {"medium": arm([5.0, 7.0, 3.0]), "small": arm([5.0, 7.0, 3.0]), "large": arm([5.0, 7.0, 3.0])}
        rng = random.Random(3)
        samples = [choose("thompson", POOL, few, rng=rng).estimates["medium"]["sample"] for _ in range(200)]
        narrow = settled({"medium": 5.0, "small": 5.0, "large": 5.0})
        narrow_samples = [choose("thompson", POOL, narrow, rng=rng).estimates["medium"]["sample"] for _ in range(200)]
        assert _spread(samples) > 5 * _spread(narrow_samples)

    def test_noisy_rewards_make_wider_samples(self) -> None:
        noisy = {"medium": arm([0.0, 10.0] * 50)}  # mean 5, variance 25
        steady = {"medium": arm([4.5, 5.5] * 50)}  # mean 5, variance 0.25
        rng = random.Random(4)
        noisy_samples = [choose("thompson", POOL[:1], noisy, rng=rng).estimates["medium"]["sample"]
                         for _ in range(300)]
        steady_samples = [choose("thompson", POOL[:1], steady, rng=rng).estimates["medium"]["sample"]
                          for _ in range(300)]
        assert _spread(noisy_samples) > 3 * _spread(steady_samples)

    def test_close_arms_are_both_played(self) -> None:
        stats = {"medium": arm([5.0, 7.0, 3.0, 6.0]), "small": arm([5.5, 6.5, 4.0, 6.0]), "large": arm([-20.0] * 50)}
        rng = random.Random(11)
        picks = Counter(choose("thompson", POOL, stats, rng=rng, explore=0.0).model for _ in range(400))
        assert picks["medium"] > 80 and picks["small"] > 80
        assert picks["large"] == 0

    def test_exploration_floor(self) -> None:
        stats = settled({"medium": 6.0, "small": 9.0, "large": 5.0})
        rng = random.Random(2024)
        n = 6000
        choices = [choose("thompson", POOL, stats, rng=rng, explore=0.3) for _ in range(n)]
        explored = sum(c.explored for c in choices) / n
        picks = Counter(c.model for c in choices)
        assert explored == pytest.approx(0.3, abs=0.02)
        # Uniform over the whole pool: each of the two others a third of the floor.
        assert picks["medium"] / n == pytest.approx(0.1, abs=0.015)
        assert picks["large"] / n == pytest.approx(0.1, abs=0.015)
        assert picks["small"] / n == pytest.approx(0.8, abs=0.02)

    def test_full_exploration_is_uniform(self) -> None:
        stats = settled({"medium": 6.0, "small": 9.0, "large": 5.0})
        rng = random.Random(5)
        picks = Counter(choose("thompson", POOL, stats, rng=rng, explore=1.0).model for _ in range(3000))
        for model in ("medium", "small", "large"):
            assert picks[model] / 3000 == pytest.approx(1 / 3, abs=0.03)

    def test_same_seed_same_choice(self) -> None:
        stats = {"medium": arm([5.0, 7.0]), "small": arm([6.0]), "large": arm([4.0, 9.0])}
        first = [choose("thompson", POOL, stats, rng=random.Random(9)) for _ in range(3)]
        assert first[0] == first[1] == first[2]


class TestValidation:
    @pytest.mark.parametrize("policy", POLICIES)
    def test_no_candidates(self, policy: str) -> None:
        with pytest.raises(ValueError, match="no candidate"):
            choose(policy, [], {}, rng=random.Random(1))  # type: ignore[arg-type]

    def test_duplicate_models(self) -> None:
        with pytest.raises(ValueError, match="distinct"):
            choose("fixed", [Candidate("a", 1.0), Candidate("a", 2.0)], {}, rng=random.Random(1))

    def test_unknown_policy(self) -> None:
        with pytest.raises(ValueError, match="unknown policy 'random'"):
            choose("random", POOL, {}, rng=random.Random(1))  # type: ignore[arg-type]

    @pytest.mark.parametrize("explore", [-0.1, 1.1, math.nan])
    def test_explore_out_of_range(self, explore: float) -> None:
        with pytest.raises(ValueError, match="explore"):
            choose("thompson", POOL, {}, rng=random.Random(1), explore=explore)

    @pytest.mark.parametrize(("cost", "quality"), [(-1.0, None), (math.nan, None), (1.0, 1.5), (1.0, -0.5)])
    def test_bad_candidate(self, cost: float, quality: float | None) -> None:
        with pytest.raises(ValueError):
            Candidate("m", cost, quality)


def _spread(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
