"""A sub-task's features and the statistics the router reads for them.

The router learns per kind of sub-task, and within a kind per size of what the worker is given: a long
instruction or large inputs from the sub-task's dependencies may need a stronger model than a short one of
the same kind. Each outcome is counted twice, under its kind (`"code"`) and under its kind and size
(`"code/long"`). A choice reads, per model, the size's arm (`arms_for`):
- never pulled in this size: an empty arm, so that Thompson sampling tries the model here once;
- pulled fewer than `MIN_CONTEXT_PULLS` times: its pulls plus the kind's arm scaled down to make up the rest,
  so that what the kind taught is a prior, not a verdict;
- pulled often enough: its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from autobots.router._stats import ArmStats

Size = Literal["short", "long"]
CONTEXT_SEPARATOR = "/"
MIN_CONTEXT_PULLS = 3


@dataclass(frozen=True)
class SubtaskFeatures:
    """What the router knows of a sub-task when it picks its model (just before the sub-task starts).

    Args:
        kind: the planner's kind of the sub-task.
        instruction_chars: the length of its instruction.
        dependencies: how many sub-tasks it takes results from.
        dependency_chars: the total length of those results.
    """

    kind: str
    instruction_chars: int
    dependencies: int
    dependency_chars: int

    def size(self, long_input_chars: int) -> Size:
        """`long` when the instruction and the dependencies' results together reach `long_input_chars`."""
        return "long" if self.instruction_chars + self.dependency_chars >= long_input_chars else "short"

    def context(self, long_input_chars: int) -> str:
        """The statistics key of the kind and size, e.g. `code/long`."""
        return context_key(self.kind, self.size(long_input_chars))

    def as_dict(self) -> dict[str, int | str]:
        return {"kind": self.kind, "instruction_chars": self.instruction_chars, "dependencies": self.dependencies,
                "dependency_chars": self.dependency_chars}


def context_key(kind: str, size: Size) -> str:
    return f"{kind}{CONTEXT_SEPARATOR}{size}"


def kind_of(key: str) -> str:
    """The kind a statistics key belongs to (`code/long` -> `code`, `code` -> `code`)."""
    return key.split(CONTEXT_SEPARATOR, 1)[0]


def size_of(key: str) -> str | None:
    """The size part of a statistics key, None for a kind's own key."""
    parts = key.split(CONTEXT_SEPARATOR, 1)
    return parts[1] if len(parts) == 2 else None


def arms_for(context: str, learned: Mapping[str, Mapping[str, ArmStats]]) -> dict[str, ArmStats]:
    """Per model, the arm a choice in `context` reads (see the module's docstring). `learned` maps statistics keys
    (kinds and contexts) to arms by model; a model with no arm in the context is left out (no pulls)."""
    if size_of(context) is None:
        return dict(learned.get(context, {}))
    by_kind = learned.get(kind_of(context), {})
    arms = {}
    for model, own in learned.get(context, {}).items():
        kind_arm = by_kind.get(model)
        if own.pulls == 0 or own.pulls >= MIN_CONTEXT_PULLS or kind_arm is None or kind_arm.pulls == 0:
            arms[model] = own
        else:
            arms[model] = _plus(own, _scaled(kind_arm, MIN_CONTEXT_PULLS - own.pulls))
    return arms


def _scaled(arm: ArmStats, pulls: int) -> ArmStats:
    """The arm's means and spread, as if it had `pulls` pulls."""
    factor = pulls / arm.pulls
    return ArmStats(pulls=pulls, reward_sum=arm.reward_sum * factor, reward_sq_sum=arm.reward_sq_sum * factor,
                    success_sum=arm.success_sum * factor, cost_sum=arm.cost_sum * factor,
                    latency_sum=arm.latency_sum * factor)


def _plus(a: ArmStats, b: ArmStats) -> ArmStats:
    return ArmStats(pulls=a.pulls + b.pulls, reward_sum=a.reward_sum + b.reward_sum,
                    reward_sq_sum=a.reward_sq_sum + b.reward_sq_sum, success_sum=a.success_sum + b.success_sum,
                    cost_sum=a.cost_sum + b.cost_sum, latency_sum=a.latency_sum + b.latency_sum)
