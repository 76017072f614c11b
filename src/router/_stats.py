"""The reward of one sub-task's outcome and the running statistics of one arm, a (kind, model) pair."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class RewardWeights:
    """How much a success is worth against what it cost and how long it took.

    With the defaults a success is worth 100 US cents and 1,000 seconds, so a model that costs 5 cents more
    per call has to succeed 5 percentage points more often to be worth it.

    Args:
        alpha: weight of success (a score in [0, 1]).
        beta: weight of cost, per US cent.
        gamma: weight of latency, per second.
    """

    alpha: float = 10.0
    beta: float = 0.1
    gamma: float = 0.01


def reward(success: float, cost_cents: float, latency_s: float, weights: RewardWeights) -> float:
    """R = alpha * success - beta * cost - gamma * latency.

    Args:
        success: the outcome's score in [0, 1] (1 = done right, as a verifier or the user judged).
        cost_cents: what the call cost, in US cents.
        latency_s: how long it took, in seconds.
        weights: the weights of the three terms.

    Raises:
        ValueError: a value outside its range, or not finite.
    """
    _check_outcome(success, cost_cents, latency_s)
    return weights.alpha * success - weights.beta * cost_cents - weights.gamma * latency_s


@dataclass(frozen=True)
class ArmStats:
    """Sums over the recorded outcomes of one model on one kind of sub-task.

    Sums rather than means, so that an update and a correction are exact additions and the record is small
    and JSON-serialisable (`to_dict` / `from_dict`). The means are `None` while there are no pulls: no
    outcome is not an outcome of zero.
    """

    pulls: int = 0
    reward_sum: float = 0.0
    reward_sq_sum: float = 0.0
    success_sum: float = 0.0
    cost_sum: float = 0.0
    latency_sum: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.pulls, bool) or not isinstance(self.pulls, int) or self.pulls < 0:
            raise ValueError(f"pulls must be a non-negative integer, got {self.pulls!r}")
        for field in fields(self)[1:]:
            _check_finite(field.name, getattr(self, field.name))

    def updated(self, *, reward: float, success: float, cost_cents: float, latency_s: float) -> ArmStats:
        """These statistics with one more outcome."""
        _check_outcome(success, cost_cents, latency_s)
        _check_finite("reward", reward)
        return ArmStats(pulls=self.pulls + 1, reward_sum=self.reward_sum + reward,
                        reward_sq_sum=self.reward_sq_sum + reward * reward, success_sum=self.success_sum + success,
                        cost_sum=self.cost_sum + cost_cents, latency_sum=self.latency_sum + latency_s)

    def corrected(self, *, old_reward: float, new_reward: float, old_success: float,
                  new_success: float) -> ArmStats:
        """These statistics with one recorded outcome's reward and success replaced (user feedback).

        The pull, its cost and its latency stay: the call happened, only the judgement of it changed.

        Raises:
            ValueError: there is no pulled outcome to correct, or a value is out of range.
        """
        if self.pulls == 0:
            raise ValueError("no recorded outcome to correct: the arm has no pulls")
        for name, value in (("old_success", old_success), ("new_success", new_success)):
            _check_success(name, value)
        _check_finite("old_reward", old_reward)
        _check_finite("new_reward", new_reward)
        return replace(self, reward_sum=self.reward_sum - old_reward + new_reward,
                       reward_sq_sum=self.reward_sq_sum - old_reward * old_reward + new_reward * new_reward,
                       success_sum=self.success_sum - old_success + new_success)

    @property
    def mean_reward(self) -> float | None:
        return self.reward_sum / self.pulls if self.pulls else None

    @property
    def mean_success(self) -> float | None:
        return self.success_sum / self.pulls if self.pulls else None

    @property
    def mean_cost(self) -> float | None:
        """Mean cost per call, in US cents."""
        return self.cost_sum / self.pulls if self.pulls else None

    @property
    def mean_latency(self) -> float | None:
        """Mean latency per call, in seconds."""
        return self.latency_sum / self.pulls if self.pulls else None

    @property
    def reward_ss(self) -> float:
        """Sum of squared deviations of the rewards from their mean (0 with fewer than two pulls)."""
        if self.pulls < 2:
            return 0.0
        # Rounding in sq_sum - n * mean^2 can go slightly negative when every reward is the same.
        return max(0.0, self.reward_sq_sum - self.reward_sum * self.reward_sum / self.pulls)

    def to_dict(self) -> dict[str, Any]:
        """The sums as a JSON-serialisable dict (the inverse of `from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArmStats:
        """Statistics from `to_dict`'s output; missing keys take their defaults.

        Raises:
            ValueError: an unknown key, or a value of the wrong type or range.
        """
        unknown = set(data) - {field.name for field in fields(cls)}
        if unknown:
            raise ValueError(f"unknown arm statistics keys: {sorted(unknown)}")
        return cls(**data)


def _check_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def _check_success(name: str, value: float) -> None:
    _check_finite(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")


def _check_outcome(success: float, cost_cents: float, latency_s: float) -> None:
    _check_success("success", success)
    for name, value in (("cost_cents", cost_cents), ("latency_s", latency_s)):
        _check_finite(name, value)
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value!r}")
