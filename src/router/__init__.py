"""The model router of `planner` workflows: which model of a pool gets each sub-task.

A pure library: the caller keeps the statistics (`ArmStats`, per sub-task kind and model), asks `choose`
for a model, scores the outcome with `reward` and records it with `ArmStats.updated`. `simulation` evaluates
the policies offline (`python -m autobots router simulate`).
"""

from autobots.router._policies import POLICIES, Candidate, Choice, Policy, choose
from autobots.router._stats import ArmStats, RewardWeights, reward

__all__ = ["POLICIES", "ArmStats", "Candidate", "Choice", "Policy", "RewardWeights", "choose", "reward"]
