"""Compile a validated spec into something that runs AutoGen agents: one builder per workflow type."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._hierarchy import HierarchyWorkflow
from autobots.workflows.builders._pipeline import PipelineWorkflow, StepFailed
from autobots.workflows.builders._planner import InvalidPlan, PlannerWorkflow
from autobots.workflows.builders._proxy import CodeExecutionRecord, UserProxy, extract_code_blocks
from autobots.workflows.builders._result import WorkflowEvent, WorkflowResult, strip_termination
from autobots.workflows.builders._sequential import SequentialWorkflow
from autobots.workflows.builders._strategy import StrategyFormatError, StrategyWorkflow
from autobots.workflows.builders._team import TeamWorkflow, build_team
from autobots.workflows.builders._termination import wall_time_limit
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken


class CompiledWorkflow(Protocol):
    """Runs one user message through the workflow; a resumable one can checkpoint and continue later."""

    resumable: bool

    def run_stream(
        self, task: Sequence[BaseChatMessage], token: CancellationToken
    ) -> AsyncIterator[BaseAgentEvent | BaseChatMessage | WorkflowEvent | WorkflowResult]: ...

    async def checkpoint(self) -> Mapping[str, Any] | None: ...

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None: ...


def compile_workflow(ctx: BuildContext) -> CompiledWorkflow:
    if ctx.spec.type == "sequential":
        return SequentialWorkflow(ctx)
    if ctx.spec.type == "pipeline":
        return PipelineWorkflow(ctx)
    if ctx.spec.type == "strategy":
        return StrategyWorkflow(ctx)
    if ctx.spec.type == "hierarchy":
        return HierarchyWorkflow(ctx)
    if ctx.spec.type == "planner":
        return PlannerWorkflow(ctx)
    return TeamWorkflow(ctx)


__all__ = [
    "BuildContext",
    "CodeExecutionRecord",
    "CompiledWorkflow",
    "HierarchyWorkflow",
    "InvalidPlan",
    "PipelineWorkflow",
    "PlannerWorkflow",
    "StepFailed",
    "StrategyFormatError",
    "StrategyWorkflow",
    "UserProxy",
    "WorkflowEvent",
    "WorkflowResult",
    "build_team",
    "compile_workflow",
    "extract_code_blocks",
    "strip_termination",
    "wall_time_limit",
]
