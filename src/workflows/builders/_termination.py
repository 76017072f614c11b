"""Termination from the spec, capped by the server's run limits."""

from __future__ import annotations

from autobots.config import Settings
from autobots.workflows.schemas import TerminationSpec
from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.conditions import (
    MaxMessageTermination,
    TextMentionTermination,
    TimeoutTermination,
    TokenUsageTermination,
)


def _capped(value: int | None, limit: int | None) -> int | None:
    if value is None:
        return limit
    if limit is None:
        return value
    return min(value, limit)


def build_termination(spec: TerminationSpec, settings: Settings, *, agent_names: list[str],
                      replayed: int) -> TerminationCondition:
    """The team's stop rule. `replayed` task messages are counted by AutoGen, so the cap moves past them."""
    condition: TerminationCondition = MaxMessageTermination(
        (_capped(spec.max_messages, settings.run_max_messages) or settings.run_max_messages) + replayed
    )
    if spec.text:
        condition = condition | TextMentionTermination(spec.text, sources=agent_names)
    max_tokens = _capped(spec.max_tokens, settings.run_max_tokens)
    if max_tokens is not None:
        condition = condition | TokenUsageTermination(max_total_token=max_tokens)
    timeout = _capped(spec.timeout_s, settings.run_max_seconds)
    if timeout is not None:
        condition = condition | TimeoutTermination(timeout)
    return condition


def wall_time_limit(spec: TerminationSpec, settings: Settings) -> float:
    """Hard wall-clock limit for a run (the executor cancels the run past it)."""
    return float(_capped(spec.timeout_s, settings.run_max_seconds) or settings.run_max_seconds)
