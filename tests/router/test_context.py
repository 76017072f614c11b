"""The router's view of a sub-task: its kind and input size, and the arms a choice reads for them."""

from __future__ import annotations

import random

import pytest
from autobots.router import (
    MIN_CONTEXT_PULLS,
    ArmStats,
    Candidate,
    RewardWeights,
    SubtaskFeatures,
    arms_for,
    choose,
    kind_of,
    reward,
    size_of,
)
from autobots.workflows.schemas import PlannerSpec
from pydantic import ValidationError

WEIGHTS = RewardWeights()


def pulled(times: int, value: float = 5.0) -> ArmStats:
    stats = ArmStats()
    for _ in range(times):
        stats = stats.updated(reward=value, success=1.0, cost_cents=0.0, latency_s=0.0)
    return stats


class TestFeatures:
    def test_the_instruction_and_the_dependencies_results_together_make_the_size(self) -> None:
        features = SubtaskFeatures(kind="code", instruction_chars=150, dependencies=2, dependency_chars=50)
        assert features.size(200) == "long" and features.context(200) == "code/long"
        assert features.size(201) == "short" and features.context(201) == "code/short"

    def test_a_context_key_splits_back_into_kind_and_size(self) -> None:
        assert (kind_of("code/long"), size_of("code/long")) == ("code", "long")
        assert (kind_of("code"), size_of("code")) == ("code", None)

    def test_a_kind_may_not_contain_the_separator(self) -> None:
        with pytest.raises(ValidationError):
            PlannerSpec(kinds=["code/long"])


class TestArmsFor:
    def test_a_model_never_pulled_in_the_size_has_an_empty_arm_there(self) -> None:
        learned = {"code": {"small": pulled(10)}}
        assert arms_for("code/long", learned) == {}

    def test_a_few_pulls_in_the_size_are_topped_up_by_the_kind(self) -> None:
        learned = {"code": {"small": pulled(10, 1.0)}, "code/long": {"small": pulled(1, 9.0)}}
        arm = arms_for("code/long", learned)["small"]
        assert arm.pulls == MIN_CONTEXT_PULLS
        assert arm.mean_reward == pytest.approx((9.0 + (MIN_CONTEXT_PULLS - 1) * 1.0) / MIN_CONTEXT_PULLS)

    def test_the_size_alone_is_read_once_it_has_enough_pulls(self) -> None:
        learned = {"code": {"small": pulled(10, 1.0)}, "code/long": {"small": pulled(MIN_CONTEXT_PULLS, 9.0)}}
        assert arms_for("code/long", learned)["small"] == pulled(MIN_CONTEXT_PULLS, 9.0)

    def test_a_kind_key_reads_the_kind(self) -> None:
        assert arms_for("code", {"code": {"small": pulled(2)}}) == {"small": pulled(2)}


def test_a_router_learning_by_size_gives_long_subtasks_the_strong_model_and_short_ones_the_cheap() -> None:
    """The cheap model does short code well and long code badly; the dear one does both well. Learning per kind
    alone, one model would have to serve both sizes; per size, each gets its own."""
    pool = [Candidate("small", 0.2, None), Candidate("large", 6.0, None)]
    succeeds = {("small", "short"): 0.95, ("small", "long"): 0.1, ("large", "short"): 0.97, ("large", "long"): 0.95}
    rng, learned = random.Random(7), {}
    picks: dict[str, list[str]] = {"short": [], "long": []}
    for round_ in range(400):
        size = "long" if round_ % 2 else "short"
        context = f"code/{size}"
        choice = choose("thompson", pool, arms_for(context, learned), rng=rng, explore=0.02, weights=WEIGHTS)
        cost = next(c.cost_per_call_cents for c in pool if c.model == choice.model)
        success = 1.0 if rng.random() < succeeds[(choice.model, size)] else 0.0
        value = reward(success, cost, 1.0, WEIGHTS)
        for key in ("code", context):
            arms = learned.setdefault(key, {})
            arms[choice.model] = arms.get(choice.model, ArmStats()).updated(
                reward=value, success=success, cost_cents=cost, latency_s=1.0)
        picks[size].append(choice.model)
    assert picks["short"][-100:].count("small") >= 85
    assert picks["long"][-100:].count("large") >= 85
