"""autonomous and groupchat: one AutoGen team, run once per user message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from autobots.models.schemas import Persona
from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._result import WorkflowResult, finish
from autobots.workflows.builders._termination import build_termination, limit_reached
from autobots.workflows.schemas import GroupChatSpec
from autogen_agentchat.base import ChatAgent, TaskResult, Team
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import CancellationToken

StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowResult


def participants_of(ctx: BuildContext) -> tuple[list[str], GroupChatSpec | None]:
    """Agent names in speaking order, and the groupchat settings when a groupchat drives the talk."""
    spec = ctx.spec
    if spec.type == "groupchat":
        assert spec.groupchat is not None
        return list(spec.groupchat.agents), spec.groupchat
    assert spec.sender is not None and spec.receiver is not None
    if spec.groupchat is not None and spec.receiver == spec.groupchat.name:
        members = list(spec.groupchat.agents)
        if spec.sender not in members:
            members.append(spec.sender)
        return members, spec.groupchat
    return [spec.receiver, spec.sender], None


def build_team(ctx: BuildContext, *, already: int = 0, resuming: bool = False) -> Team:
    names, group = participants_of(ctx)
    agents: list[ChatAgent] = []
    for name in names:
        agent_spec = ctx.spec.agent(name)
        assert agent_spec is not None
        agents.append(ctx.build_agent(agent_spec))
    termination = build_termination(ctx.spec.termination, ctx.settings, agent_names=names, already=already,
                                    resuming=resuming)
    if group is not None and group.speaker_selection == "auto":
        selector_model = group.model or "default"
        selector = ctx.model_client(selector_model, Persona(name="speaker_selector",
                                                            termination_text=ctx.termination_text))
        return SelectorGroupChat(agents, model_client=selector, termination_condition=termination,
                                 allow_repeated_speaker=group.allow_repeat_speaker)
    return RoundRobinGroupChat(agents, termination_condition=termination)


def summary_model_of(ctx: BuildContext) -> str | None:
    for agent in ctx.spec.agents:
        if agent.kind == "assistant":
            return ctx.spec.model_for(agent)
    return None


class TeamWorkflow:
    """A single AutoGen team (autonomous two-party chat or a group chat); resumable from a checkpoint."""

    resumable = True

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx
        self._team: Team | None = None
        self._resume_state: Mapping[str, Any] | None = None
        self._earlier: list[BaseAgentEvent | BaseChatMessage] = []

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        """Continue a team saved by `checkpoint()`; `earlier` are the messages it had produced."""
        self._resume_state = state
        self._earlier = list(earlier)

    async def checkpoint(self) -> Mapping[str, Any] | None:
        return await self._team.save_state() if self._team is not None else None

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        resuming = self._resume_state is not None
        already = sum(1 for m in self._earlier if isinstance(m, BaseChatMessage))
        team = self._team = build_team(self.ctx, already=already, resuming=resuming)
        if self._resume_state is not None:
            await team.load_state(self._resume_state)
        messages: list[BaseAgentEvent | BaseChatMessage] = list(self._earlier)
        stop_reason: str | None = None
        stream = team.run_stream(task=None if resuming else list(task), cancellation_token=token,
                                 output_task_messages=False)
        async for item in stream:
            if isinstance(item, TaskResult):
                stop_reason = item.stop_reason
                continue
            messages.append(item)
            yield item
        yield await finish(self.ctx, messages, stop_reason, summary_model=summary_model_of(self.ctx),
                           incomplete_reason=limit_reached(stop_reason))
