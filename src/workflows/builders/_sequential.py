"""sequential: one conversation per step, each given the task and the summaries carried over so far."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._result import WorkflowResult, finish, last_reply, summarize
from autobots.workflows.builders._termination import build_termination, limit_reached
from autogen_agentchat.base import ChatAgent, TaskResult
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import CancellationToken

StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowResult


def step_task(task: Sequence[BaseChatMessage], carried: list[tuple[str, str]]) -> list[BaseChatMessage]:
    """The step's input: the replayed history and the user's message, plus what earlier steps concluded."""
    if not carried:
        return list(task)
    notes = "\n\n".join(f"[{agent}]\n{summary}" for agent, summary in carried)
    last = task[-1]
    enriched = TextMessage(content=f"{last.to_text()}\n\nContext carried over from previous steps:\n{notes}",
                           source=last.source)
    return [*task[:-1], enriched]


class SequentialWorkflow:
    """Steps in order; with no explicit sender each step is one reply from the step's agent."""

    resumable = False

    def __init__(self, ctx: BuildContext) -> None:
        self.ctx = ctx

    async def checkpoint(self) -> None:
        return None

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        raise NotImplementedError("a sequential workflow cannot resume mid-way")

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        spec = self.ctx.spec
        assert spec.steps
        carried: list[tuple[str, str]] = []
        messages: list[BaseAgentEvent | BaseChatMessage] = []
        stop_reason: str | None = None
        stopped_by: str | None = None
        for step in spec.steps:
            step_messages: list[BaseAgentEvent | BaseChatMessage] = []
            inputs = step_task(task, carried)
            async for item in self._run_step(step, inputs, token):
                if isinstance(item, TaskResult):
                    stop_reason = item.stop_reason
                    continue
                step_messages.append(item)
                yield item
            messages.extend(step_messages)
            carried_text = await self._carry_over(step, step_messages)
            if carried_text:
                carried.append((step, carried_text))
            # A step ends by its message limit (or its text); a run-wide limit (tokens, time) ends the workflow.
            stopped_by = limit_reached(stop_reason, message_limit_ends_step=True)
            if stopped_by is not None:
                break
        summary_model = spec.model_for(spec.agent(spec.steps[-1]))  # type: ignore[arg-type]
        yield await finish(self.ctx, messages, stop_reason, summary_model=summary_model, incomplete_reason=stopped_by)

    async def _run_step(self, step: str, inputs: list[BaseChatMessage], token: CancellationToken):  # type: ignore[no-untyped-def]
        spec = self.ctx.spec
        step_agent = self.ctx.build_agent(spec.agent(step))  # type: ignore[arg-type]
        participants: list[ChatAgent] = [step_agent]
        names = [step]
        if spec.sender:
            participants.append(self.ctx.build_agent(spec.agent(spec.sender)))  # type: ignore[arg-type]
            names.append(spec.sender)
        termination = build_termination(spec.termination, self.ctx.settings, agent_names=names,
                                        max_messages=None if spec.sender else 1)
        team = RoundRobinGroupChat(participants, termination_condition=termination)
        async for item in team.run_stream(task=inputs, cancellation_token=token, output_task_messages=False):
            yield item

    async def _carry_over(self, step: str, step_messages: list[BaseAgentEvent | BaseChatMessage]) -> str | None:
        method = self.ctx.spec.summary_method
        if method == "none" or not step_messages:
            return None
        if method == "llm":
            agent = self.ctx.spec.agent(step)
            assert agent is not None
            return await summarize(self.ctx, step_messages, model_name=self.ctx.spec.model_for(agent))
        return last_reply(step_messages, self.ctx.spec.termination.text) or None
