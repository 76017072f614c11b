"""The model router of `planner` workflows: which model of a pool gets each sub-task.

A pure library: the caller keeps the statistics (`ArmStats`, per sub-task kind and model, and per kind, input
size and model: `SubtaskFeatures`, `arms_for`), asks `choose` for a model, scores the outcome with `reward`
and records it with `ArmStats.updated`. `simulation` evaluates the policies offline (`python -m autobots router
simulate`).
"""

from autobots.router._context import MIN_CONTEXT_PULLS, SubtaskFeatures, arms_for, context_key, kind_of, size_of
from autobots.router._policies import POLICIES, Candidate, Choice, Policy, choose
from autobots.router._stats import ArmStats, RewardWeights, reward

__all__ = ["MIN_CONTEXT_PULLS", "POLICIES", "ArmStats", "Candidate", "Choice", "Policy", "RewardWeights",
           "SubtaskFeatures", "arms_for", "choose", "context_key", "kind_of", "reward", "size_of"]
