"""Which model of a pool gets a sub-task: three fixed baselines and Thompson sampling.

The caller passes the arms of the sub-task's context (`arms_for`: its kind and input size, backing off to the
kind while the size has few pulls); a policy sees only those arms and the candidates' prices.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from autobots.router._stats import ArmStats, RewardWeights

Policy = Literal["fixed", "cheapest", "best", "thompson"]
POLICIES: tuple[Policy, ...] = get_args(Policy)

# The prior of an arm's reward is worth this many pulls: enough to order untried arms sensibly, little
# enough that a handful of outcomes overrules a wrong quality.
PRIOR_PULLS = 1.0
# Shape of the inverse-gamma prior of the reward's variance; with 2 its mean is the scale below.
PRIOR_SHAPE = 2.0
# A quality nobody stated: a coin flip.
UNKNOWN_QUALITY = 0.5


@dataclass(frozen=True)
class Candidate:
    """A model the router may pick for the sub-task.

    Args:
        model: the model's name (the key of its statistics).
        cost_per_call_cents: the expected cost of one call in US cents, from the model's price and the
            kind's typical token counts (the caller computes it).
        quality: the operator's prior of its success rate in [0, 1], e.g. from its capabilities; `best`
            ranks by it and `thompson` starts from it. `None`: not stated.
    """

    model: str
    cost_per_call_cents: float
    quality: float | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("a candidate needs a model name")
        if not math.isfinite(self.cost_per_call_cents) or self.cost_per_call_cents < 0:
            raise ValueError(f"{self.model}: cost_per_call_cents must be a finite number >= 0")
        if self.quality is not None and not 0.0 <= self.quality <= 1.0:
            raise ValueError(f"{self.model}: quality must be in [0, 1]")


@dataclass(frozen=True)
class Choice:
    """The router's pick and why.

    Args:
        model: the model picked.
        policy: the policy that picked it.
        estimates: per candidate, `mean` (the posterior mean of its reward; the prior's while it has no
            pulls), `sample` (Thompson's draw from that posterior; the mean under the other policies) and
            `pulls`.
        explored: the pick was not the policy's best guess but exploration: a first try of an arm without
            pulls, or the uniform pick of the exploration floor. Always false for the baselines (fixed,
            cheapest, best).
    """

    model: str
    policy: Policy
    estimates: dict[str, dict[str, float]]
    explored: bool


@dataclass(frozen=True)
class _Posterior:
    """Normal-inverse-gamma posterior of an arm's reward.

    The reward's variance ~ InvGamma(shape, scale) and, given it, the reward's mean ~ N(mean, variance / kappa).
    """

    mean: float
    kappa: float
    shape: float
    scale: float

    def sample(self, rng: random.Random) -> float:
        variance = self.scale / rng.gammavariate(self.shape, 1.0)
        return rng.gauss(self.mean, math.sqrt(variance / self.kappa))


def choose(policy: Policy, candidates: Sequence[Candidate], stats: Mapping[str, ArmStats], *,
           rng: random.Random, explore: float = 0.05, weights: RewardWeights = RewardWeights()) -> Choice:
    """Pick the model for one sub-task.

    Policies:
        fixed: the first candidate.
        cheapest: the lowest `cost_per_call_cents` (the first of equals).
        best: the highest `quality`, the "always the strongest model" baseline; an unstated quality ranks
            below any stated one, and among equals the most expensive wins (price as a proxy of strength).
        thompson: Thompson sampling. Each arm's reward is Gaussian with unknown mean and variance under a
            normal-inverse-gamma prior: its mean is `alpha * quality - beta * cost_per_call_cents` (quality
            0.5 when unstated), worth `PRIOR_PULLS` pulls; its variance scale is `alpha**2 / 4`, the variance
            of a coin-flip success. Arms without pulls are tried first; otherwise, with probability
            `explore` a uniform random pick, else the arm whose posterior draw is highest.

    Args:
        policy: one of `POLICIES`.
        candidates: the pool, in the operator's order (`fixed` takes the first).
        stats: the arms of this sub-task's kind, by model name; a model without an entry has no pulls.
        rng: the source of randomness (seed it for reproducible choices).
        explore: the exploration floor of `thompson`, a probability in [0, 1]; the other policies ignore it.
        weights: the reward's weights, which set the prior's scale.

    Raises:
        ValueError: no candidates, two with the same model, an unknown policy or `explore` out of range.
    """
    if not candidates:
        raise ValueError("no candidate models")
    if len({c.model for c in candidates}) != len(candidates):
        raise ValueError("candidate models must be distinct")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    if not 0.0 <= explore <= 1.0:
        raise ValueError(f"explore must be in [0, 1], got {explore!r}")
    arms = [stats.get(c.model, ArmStats()) for c in candidates]
    posteriors = [_posterior(c, arm, weights) for c, arm in zip(candidates, arms, strict=True)]
    explored = False
    if policy == "thompson":
        samples = [p.sample(rng) for p in posteriors]
        untried = [i for i, arm in enumerate(arms) if arm.pulls == 0]
        if untried:
            pick, explored = untried[rng.randrange(len(untried))], True
        elif rng.random() < explore:
            pick, explored = rng.randrange(len(candidates)), True
        else:
            pick = max(range(len(candidates)), key=samples.__getitem__)
    else:
        samples = [p.mean for p in posteriors]
        pick = _fixed_pick(policy, candidates)
    estimates = {c.model: {"mean": p.mean, "sample": s, "pulls": float(arm.pulls)}
                 for c, p, s, arm in zip(candidates, posteriors, samples, arms, strict=True)}
    return Choice(model=candidates[pick].model, policy=policy, estimates=estimates, explored=explored)


def _fixed_pick(policy: Policy, candidates: Sequence[Candidate]) -> int:
    indices = range(len(candidates))
    if policy == "cheapest":
        return min(indices, key=lambda i: candidates[i].cost_per_call_cents)
    if policy == "best":
        def strength(i: int) -> tuple[bool, float, float]:
            quality = candidates[i].quality
            return quality is not None, quality or 0.0, candidates[i].cost_per_call_cents

        return max(indices, key=strength)
    return 0


def _posterior(candidate: Candidate, arm: ArmStats, weights: RewardWeights) -> _Posterior:
    quality = UNKNOWN_QUALITY if candidate.quality is None else candidate.quality
    prior_mean = weights.alpha * quality - weights.beta * candidate.cost_per_call_cents
    prior_scale = (PRIOR_SHAPE - 1.0) * max(weights.alpha * weights.alpha / 4.0, 1e-6)
    n = arm.pulls
    if n == 0:
        return _Posterior(mean=prior_mean, kappa=PRIOR_PULLS, shape=PRIOR_SHAPE, scale=prior_scale)
    mean = arm.reward_sum / n
    kappa = PRIOR_PULLS + n
    return _Posterior(
        mean=(PRIOR_PULLS * prior_mean + n * mean) / kappa, kappa=kappa, shape=PRIOR_SHAPE + n / 2.0,
        scale=prior_scale + arm.reward_ss / 2.0 + PRIOR_PULLS * n * (mean - prior_mean) ** 2 / (2.0 * kappa))
