"""Termination from the spec, capped by the server's run limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from autobots.config import Settings
from autobots.workflows.schemas import TerminationSpec
from autogen_agentchat.base import TerminatedException, TerminationCondition
from autogen_agentchat.conditions import TextMentionTermination, TimeoutTermination, TokenUsageTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage


def _capped(value: int | None, limit: int | None) -> int | None:
    if value is None:
        return limit
    if limit is None:
        return value
    return min(value, limit)


class AgentMessageLimit(TerminationCondition):
    """Stop after `limit` messages written by the agents.

    AutoGen's MaxMessageTermination also counts the task messages (the replayed history and the user's message),
    which the team hands to the condition in its first call; this one skips that first call.
    """

    def __init__(self, limit: int, *, already: int = 0, resuming: bool = False) -> None:
        self._limit = limit
        self._already = already
        self._count = already
        self._seen_task = resuming

    @property
    def terminated(self) -> bool:
        return self._count >= self._limit

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if self.terminated:
            raise TerminatedException("Termination condition has already been reached")
        if not self._seen_task:
            self._seen_task = True
            return None
        self._count += sum(1 for message in messages if isinstance(message, BaseChatMessage))
        if self.terminated:
            return StopMessage(content=f"Maximum number of messages {self._limit} reached",
                               source="AgentMessageLimit")
        return None

    async def reset(self) -> None:
        self._count = self._already
        self._seen_task = False


def build_termination(
    spec: TerminationSpec, settings: Settings, *, agent_names: list[str], max_messages: int | None = None,
    already: int = 0, resuming: bool = False,
) -> TerminationCondition:
    """The team's stop rule: the spec's conditions, each capped by the server's run limits.

    A resumed team has no task messages and has already spoken `already` messages.
    """
    limit = max_messages or _capped(spec.max_messages, settings.run_max_messages) or settings.run_max_messages
    condition: TerminationCondition = AgentMessageLimit(limit, already=already, resuming=resuming)
    if spec.text:
        condition = condition | TextMentionTermination(spec.text, sources=agent_names)
    max_tokens = _capped(spec.max_tokens, settings.run_max_tokens)
    if max_tokens is not None:
        condition = condition | TokenUsageTermination(max_total_token=max_tokens)
    timeout = _capped(spec.timeout_s, settings.run_max_seconds)
    if timeout is not None:
        condition = condition | TimeoutTermination(timeout)
    return condition


IncompleteReason = Literal["max_messages", "max_tokens", "timeout"]
# How AutoGen's conditions (and ours) word their stop messages; a combined condition joins them with "; ".
_LIMIT_WORDING: tuple[tuple[str, IncompleteReason], ...] = (
    ("Maximum number of messages", "max_messages"), ("Token usage limit", "max_tokens"), ("Timeout of", "timeout"))


def limit_reached(stop_reason: str | None, *, message_limit_ends_step: bool = False) -> IncompleteReason | None:
    """The limit that stopped a team before its own end (the termination text), or None when it ended itself.

    Args:
        stop_reason: The team's stop reason.
        message_limit_ends_step: The message limit is how the team ends normally (a sequential step without a
            sender says one message), so only the run-wide limits (tokens, time) count as stopping it early.
    """
    if not stop_reason or "mentioned" in stop_reason:
        return None
    for wording, reason in _LIMIT_WORDING:
        if wording in stop_reason and not (message_limit_ends_step and reason == "max_messages"):
            return reason
    return None


def wall_time_limit(spec: TerminationSpec, settings: Settings) -> float:
    """Hard wall-clock limit for a run (the executor cancels the run past it)."""
    return float(_capped(spec.timeout_s, settings.run_max_seconds) or settings.run_max_seconds)
