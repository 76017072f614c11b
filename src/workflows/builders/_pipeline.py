"""pipeline: a DAG of steps (agents or prompt modules), each with its own model; ready steps run at once.

The scheduler is our own loop over asyncio tasks rather than AutoGen's GraphFlow, which waits for a whole batch
of running nodes before starting the next one (here a step starts as soon as its inputs are done, while its
siblings still run) and whose resumed cyclic graphs can stop at once (autogen issue 7043). Each step is a fresh
AutoGen `AssistantAgent` run on a prompt made of the task, its inputs' outputs (labelled by step id) and its
supplement.

Progress is yielded as `WorkflowEvent`s: the run records `step.completed` (with a checkpoint listing every finished
step's record) durably before the generator is resumed, so no dependant starts before its inputs are on disk, and
a resumed attempt runs only the steps without a recorded output. A step with `execute` runs the code it writes in
the run's sandbox and, on a non-zero exit, shows the agent the error and asks again, up to `max_attempts`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autobots import models
from autobots.errors import AutobotsError
from autobots.models.schemas import Persona
from autobots.workflows._pipeline_checks import resolve_module, step_model
from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._proxy import CodeExecutionRecord, extract_code_blocks
from autobots.workflows.builders._result import WorkflowEvent, WorkflowResult, strip_termination
from autobots.workflows.schemas import TASK_INPUT, PipelineStep
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken
from autogen_core.model_context import UnboundedChatCompletionContext

# Steps of one run executing at once, whatever the spec asks: each holds a model call (and maybe a sandbox).
SERVER_MAX_PARALLEL = 16
StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowResult


class StepFailed(AutobotsError):
    """A step could not finish: the run fails naming it (`error.step`); the finished steps' outputs are kept.

    Args:
        step_id: The step.
        message: What went wrong, for the client.
        cause: The exception that ended the step, which the run classifies (`error.type`); None when the step
            itself gave up (its code never ran successfully: `code_failed`).
    """

    code = "step_failed"

    def __init__(self, step_id: str, message: str, *, cause: BaseException | None = None,
                 error_type: str | None = None) -> None:
        super().__init__(message, code=error_type or "step_failed")
        self.step_id = step_id
        self.cause = cause


# Picks a ready step's model from the step and its inputs' outputs (by step id); returns it with the events
# that record the decision.
StepRouter = Callable[[PipelineStep, Mapping[str, str]], tuple[str, list[WorkflowEvent]]]


@dataclass
class _StepRun:
    """What one step produced: its record (the `step.completed` data) and its agent's messages."""

    record: dict[str, Any]
    messages: list[BaseChatMessage] = field(default_factory=list)


class PipelineWorkflow:
    """Runs a validated pipeline spec; resumable from the records of its finished steps."""

    resumable = True

    def __init__(self, ctx: BuildContext, route_step: StepRouter | None = None) -> None:
        """`route_step`, when given, picks each step's model as the step becomes ready (the planner's router),
        from the step and its inputs' outputs, in place of the model the spec names."""
        assert ctx.spec.pipeline is not None
        self.ctx = ctx
        self.pipeline = ctx.spec.pipeline
        self.model_by_step = {step.id: step_model(ctx.spec, index, ctx.modules)
                              for index, step in enumerate(self.pipeline.steps)}
        self.route_step = route_step
        self._done: dict[str, dict[str, Any]] = {}

    @property
    def model_by_source(self) -> Mapping[str, str]:
        """Which model each transcript source (a step id) used, for pricing."""
        return self.model_by_step

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        """Continue after the steps whose records `checkpoint()` saved."""
        self._done = {record["id"]: dict(record) for record in state.get("steps", [])}

    async def checkpoint(self) -> Mapping[str, Any] | None:
        return {"steps": [self._done[step.id] for step in self.pipeline.steps if step.id in self._done]}

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        task_text = task[-1].to_text() if task else ""
        pending = [step for step in self.pipeline.steps if step.id not in self._done]
        running: dict[asyncio.Task[_StepRun], PipelineStep] = {}
        limit = min(self.pipeline.max_parallel, SERVER_MAX_PARALLEL)
        messages: list[BaseAgentEvent | BaseChatMessage] = []
        try:
            while pending or running:
                for step in [s for s in pending if self._ready(s)][:max(0, limit - len(running))]:
                    pending.remove(step)
                    if self.route_step is not None:
                        inputs = {source: str(self._done[source]["output"]) for source in step.inputs
                                  if source != TASK_INPUT}
                        self.model_by_step[step.id], routing_events = self.route_step(step, inputs)
                        for event in routing_events:
                            yield event
                    yield WorkflowEvent("step.started", {"id": step.id, "model": self.model_by_step[step.id],
                                                     "inputs": list(step.inputs)})
                    running[asyncio.create_task(self._run_step(step, task_text, token))] = step
                if not running:
                    raise StepFailed(pending[0].id, f"step '{pending[0].id}' can never start: an input never ends")
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for done in sorted(finished, key=lambda t: self.pipeline.steps.index(running[t])):
                    step = running.pop(done)
                    if done.cancelled() or token.is_cancelled():
                        raise asyncio.CancelledError
                    failure = done.exception()
                    if isinstance(failure, StepFailed):
                        raise failure
                    if failure is not None:
                        raise StepFailed(step.id, f"step '{step.id}' failed", cause=failure) from failure
                    result = done.result()
                    for message in result.messages:
                        messages.append(message)
                        yield message
                    self._done[step.id] = result.record
                    yield WorkflowEvent("step.completed", result.record, durable=True)
        finally:
            for pending_task in running:
                pending_task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        yield self._result(messages)

    def _ready(self, step: PipelineStep) -> bool:
        return all(source == TASK_INPUT or source in self._done for source in step.inputs)

    def _result(self, messages: list[BaseAgentEvent | BaseChatMessage]) -> WorkflowResult:
        output_id = self.pipeline.output or self.pipeline.steps[-1].id
        reply = str(self._done[output_id]["output"])
        steps = [self._done[step.id] for step in self.pipeline.steps if step.id in self._done]
        return WorkflowResult(messages=messages, stop_reason=f"output step '{output_id}' completed", reply=reply,
                              summary=reply, metadata={"steps": steps})

    # -- one step ---------------------------------------------------------------------------------------------

    async def _run_step(self, step: PipelineStep, task_text: str, token: CancellationToken) -> _StepRun:
        started = time.monotonic()
        model = self.model_by_step[step.id]
        agent = self._agent(step, model)
        run = _StepRun(record={})
        reply = await self._ask(agent, self._prompt(step, task_text), token, run)
        attempts, execution = 1, None
        if step.execute is not None:
            reply, attempts, execution = await self._execute_until_it_works(step, agent, reply, token, run)
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for message in run.messages:
            if message.models_usage is not None:
                usage["prompt_tokens"] += message.models_usage.prompt_tokens
                usage["completion_tokens"] += message.models_usage.completion_tokens
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        price = self.ctx.model_config(model).price
        run.record = {"id": step.id, "status": "completed", "output": reply, "model": model, "usage": usage,
                      "cost": models.compute_cost(usage["prompt_tokens"], usage["completion_tokens"], price),
                      "seconds": round(time.monotonic() - started, 3)}
        if execution is not None:
            run.record.update(attempts=attempts, **execution)
        return run

    def _agent(self, step: PipelineStep, model: str) -> AssistantAgent:
        if step.agent is not None:
            spec = self.ctx.spec.agent(step.agent)
            assert spec is not None
            system_message, description = spec.system_message, spec.description
        else:
            module = resolve_module(step.module or "", self.ctx.spec, self.ctx.modules)
            assert module is not None
            system_message, description = module.system_message, module.description
        persona = Persona(name=step.id, system_message=system_message, description=description,
                          termination_text=self.ctx.termination_text)
        return AssistantAgent(
            name=step.id, model_client=self.ctx.model_client(model, persona),
            system_message=system_message or "You are a helpful AI assistant. Do the task you are given.",
            description=description or f"pipeline step {step.id}",
            model_context=UnboundedChatCompletionContext(initial_messages=list(self.ctx.history)))

    def _prompt(self, step: PipelineStep, task_text: str) -> str:
        parts = [task_text]
        for source in step.inputs:
            if source != TASK_INPUT:
                parts.append(f"Input from step '{source}':\n{self._done[source]['output']}")
        if step.supplement:
            parts.append(step.supplement)
        return "\n\n".join(parts)

    async def _ask(self, agent: AssistantAgent, prompt: str, token: CancellationToken, run: _StepRun) -> str:
        result = await agent.run(task=prompt, cancellation_token=token)
        replies = [m for m in result.messages if isinstance(m, BaseChatMessage) and m.source == agent.name]
        run.messages.extend(replies)
        text = replies[-1].to_text() if replies else ""
        return strip_termination(text, self.ctx.spec.termination.text) or text

    async def _execute_until_it_works(self, step: PipelineStep, agent: AssistantAgent, reply: str,
                                      token: CancellationToken, run: _StepRun) -> tuple[str, int, dict[str, Any]]:
        """Run the step's code; on failure show the agent the error and ask again. Returns the final code and its
        output, the number of attempts, and the execution's fields for the step's record."""
        assert step.execute is not None
        executor = await self.ctx.code_executor(f"step:{step.id}", kind=step.execute.sandbox,
                                                timeout_s=step.execute.timeout_s)
        for attempt in range(1, step.execute.max_attempts + 1):
            blocks = extract_code_blocks(reply)
            if blocks:
                code = "\n\n".join(block.code for block in blocks)
                result = await executor.execute_code_blocks(blocks, token)
                if self.ctx.on_code_execution is not None:
                    await self.ctx.on_code_execution(CodeExecutionRecord(
                        agent=step.id, language=blocks[0].language, code=code, exit_code=result.exit_code,
                        output=result.output))
                if result.exit_code == 0:
                    output = f"```{blocks[0].language}\n{code}\n```\n\nOutput:\n{result.output}"
                    return output, attempt, {"code": code, "exit_code": 0, "execution_output": result.output}
                feedback = (f"Running your code failed with exit code {result.exit_code}. Its output:\n"
                            f"{result.output}\nFind the cause, fix it, and answer with the complete corrected code "
                            "in one python code block.")
            else:
                feedback = "Your answer has no code block. Answer with the complete code in one python code block."
            if attempt < step.execute.max_attempts:
                reply = await self._ask(agent, feedback, token, run)
        raise StepFailed(step.id, f"step '{step.id}': its code did not run successfully in "
                                  f"{step.execute.max_attempts} attempts", error_type="code_failed")
