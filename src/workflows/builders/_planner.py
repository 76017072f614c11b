"""planner: a planner model turns the task into a DAG of sub-tasks, a router picks each sub-task's worker model
from the pool, the pipeline executor runs the plan, a verifier scores each result, and the router learns.

The plan is asked for as JSON; an invalid one (not the schema, duplicate ids, unknown kinds or dependencies,
cycles, too many sub-tasks) is answered with its errors and asked again up to `max_replans`, then the run fails
with `invalid_plan`. Each sub-task is routed as it becomes ready, from its kind and input size (its instruction
and its dependencies' results; `autobots.router.SubtaskFeatures`). The accepted plan is a run event committed with
the checkpoint, and each route is checkpointed with its sub-task's step, so a resumed run keeps its plan and the
routes of finished sub-tasks, and its pipeline runs only the steps without an output. Outcomes go to the run's
router memory (the database), once per sub-task.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import jsonschema
from autobots import models
from autobots.errors import AutobotsError
from autobots.models.schemas import Persona
from autobots.router import ArmStats, Candidate, RewardWeights, SubtaskFeatures, choose, reward
from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._pipeline import PipelineWorkflow
from autobots.workflows.builders._result import NOT_JSON, WorkflowEvent, WorkflowResult, json_in_reply
from autobots.workflows.schemas import (
    AGENT_NAME_PATTERN,
    ModuleSpec,
    PipelineSpec,
    PipelineStep,
    RouterSpec,
    WorkflowSpec,
)
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken

StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowEvent | WorkflowResult
JOIN_STEP = "answer"
# What a typical sub-task costs in tokens, to turn a model's price into an expected cost per call for routing.
TYPICAL_PROMPT_TOKENS, TYPICAL_COMPLETION_TOKENS = 1000, 500
VERDICT_SCHEMA = {"type": "object", "required": ["success"],
                  "properties": {"success": {"type": "number", "minimum": 0, "maximum": 1}}}


class InvalidPlan(AutobotsError):
    code = "invalid_plan"


def plan_schema(kinds: Sequence[str], max_subtasks: int) -> dict[str, Any]:
    subtask = {"type": "object", "required": ["id", "kind", "instruction", "depends_on"],
               "properties": {"id": {"type": "string"}, "kind": {"enum": list(kinds)},
                              "instruction": {"type": "string"},
                              "depends_on": {"type": "array", "items": {"type": "string"}}}}
    return {"type": "object", "required": ["subtasks"],
            "properties": {"subtasks": {"type": "array", "minItems": 1, "maxItems": max_subtasks, "items": subtask}}}


def plan_errors(text: str, kinds: Sequence[str], max_subtasks: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The plan in `text` and what is wrong with it (nothing: a plan to run)."""
    document = json_in_reply(text)
    if document is NOT_JSON:
        return [], ["the answer is not JSON"]
    validator = jsonschema.Draft202012Validator(plan_schema(kinds, max_subtasks))
    problems = [f"{'/'.join(str(p) for p in e.absolute_path) or 'plan'}: {e.message}"
                for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))]
    if problems:
        return [], problems
    subtasks: list[dict[str, Any]] = document["subtasks"]
    ids = [s["id"] for s in subtasks]
    for s in subtasks:
        if not re.fullmatch(AGENT_NAME_PATTERN, s["id"]) or s["id"] in ("task", JOIN_STEP):
            problems.append(f"sub-task id {s['id']!r} must be a name (letters, digits, _), not task or {JOIN_STEP}")
        if ids.count(s["id"]) > 1:
            problems.append(f"sub-task id {s['id']!r} is used twice")
        problems += [f"sub-task {s['id']!r} depends on unknown {d!r}" for d in s["depends_on"] if d not in ids]
    if not problems and _has_cycle(subtasks):
        problems.append("the dependencies form a cycle")
    return (subtasks if not problems else []), sorted(set(problems), key=problems.index)


def _has_cycle(subtasks: list[dict[str, Any]]) -> bool:
    pending = {s["id"]: set(s["depends_on"]) for s in subtasks}
    while pending:
        ready = [name for name, deps in pending.items() if not deps & set(pending)]
        if not ready:
            return True
        for name in ready:
            del pending[name]
    return False


class PlannerWorkflow:
    """Plans, routes, runs the plan as a pipeline, verifies and learns; resumable."""

    resumable = True

    def __init__(self, ctx: BuildContext) -> None:
        assert ctx.spec.planner is not None and ctx.spec.workers is not None
        self.ctx = ctx
        self.planner = ctx.spec.planner
        self.workers = ctx.spec.workers
        self.router = ctx.spec.router or RouterSpec()  # a spec without a router section gets its defaults
        self.plan: list[dict[str, Any]] | None = None
        self.routes: dict[str, str] = {}
        self.contexts: dict[str, str] = {}  # the statistics key each sub-task was routed by (`code/long`)
        self._rng = random.Random()
        self.verified: dict[str, dict[str, Any]] = {}
        self._pipeline: PipelineWorkflow | None = None
        self._pipeline_state: Mapping[str, Any] | None = None
        # Which model each transcript source used, for pricing; the sub-tasks' entries appear as they are routed.
        self.model_by_source: dict[str, str] = {JOIN_STEP: self.planner.model, "planner": self.planner.model,
                                                "verifier": self.workers.verifier or self.planner.model}

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        self.plan = state.get("plan")
        self.routes = dict(state.get("routes", {}))
        self.contexts = dict(state.get("contexts", {}))
        self.model_by_source.update(self.routes)
        self.verified = dict(state.get("verified", {}))
        self._pipeline_state = state.get("pipeline")

    async def checkpoint(self) -> Mapping[str, Any] | None:
        pipeline = await self._pipeline.checkpoint() if self._pipeline is not None else self._pipeline_state
        return {"plan": self.plan, "routes": dict(self.routes), "contexts": dict(self.contexts),
                "verified": dict(self.verified), "pipeline": pipeline}

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        task_text = task[-1].to_text() if task else ""
        if self.plan is None:
            async for item in self._make_plan(task_text, token):
                yield item
        assert self.plan is not None
        self._pipeline = PipelineWorkflow(self.ctx.with_spec(self._as_pipeline()), route_step=self._route)
        if self._pipeline_state is not None:
            self._pipeline.resume_from(self._pipeline_state, [])
        result: WorkflowResult | None = None
        async for item in self._pipeline.run_stream(task, token):
            if isinstance(item, WorkflowResult):
                result = item
            else:
                yield item
        assert result is not None
        steps = {step["id"]: step for step in result.metadata.get("steps", [])}
        for subtask in self.plan:
            if subtask["id"] not in self.verified:
                async for item in self._verify(subtask, steps[subtask["id"]], token):
                    yield item
        yield WorkflowResult(messages=result.messages, stop_reason="the plan's answer step completed",
                             reply=result.reply, summary=result.reply,
                             metadata={**result.metadata, "plan": self.plan, "routes": dict(self.routes),
                                       "outcomes": [self.verified[s["id"]] for s in self.plan]})

    # -- planning ---------------------------------------------------------------------------------------------

    async def _make_plan(self, task_text: str, token: CancellationToken) -> AsyncIterator[StreamItem]:
        schema = plan_schema(self.planner.kinds, self.planner.max_subtasks)
        prompt = (f"{task_text}\n\nDecompose this task into at most {self.planner.max_subtasks} sub-tasks that "
                  f"workers can do independently where possible. Each has an id (a short name), a kind (one of "
                  f"{', '.join(self.planner.kinds)}), an instruction, and depends_on: the ids of the sub-tasks "
                  "whose results it needs. Answer with a JSON object matching this JSON Schema: "
                  f"{json.dumps(schema)}, and nothing else.")
        agent = self._agent("planner", self.planner.model, self.planner.system_message or
                            "You are a planner. You break tasks into sub-tasks with dependencies.")
        for attempt in range(self.planner.max_replans + 1):
            message = await self._ask(agent, prompt, token)
            yield message
            subtasks, problems = plan_errors(message.to_text(), self.planner.kinds, self.planner.max_subtasks)
            if not problems:
                self.plan = subtasks
                yield WorkflowEvent("plan", {"subtasks": subtasks, "attempt": attempt + 1}, durable=True)
                return
            yield WorkflowEvent("plan.invalid", {"attempt": attempt + 1, "errors": problems})
            prompt = ("Your plan has these errors:\n- " + "\n- ".join(problems) +
                      f"\nAnswer again with a corrected plan: a JSON object matching this JSON Schema: "
                      f"{json.dumps(schema)}, and nothing else.")
        raise InvalidPlan(f"the planner's plan was invalid {self.planner.max_replans + 1} times; last errors: "
                          f"{'; '.join(problems)}")

    # -- routing ----------------------------------------------------------------------------------------------

    def _route(self, step: PipelineStep, inputs: Mapping[str, str]) -> tuple[str, list[WorkflowEvent]]:
        """The model of a ready step: the planner's for the answer step, the route already taken for a sub-task
        routed before (a resumed run), else the router's choice from the sub-task's kind and input size."""
        assert self.plan is not None
        if step.id == JOIN_STEP:
            return self.planner.model, []
        if step.id in self.routes:
            return self.routes[step.id], []
        subtask = next(s for s in self.plan if s["id"] == step.id)
        features = SubtaskFeatures(kind=subtask["kind"], instruction_chars=len(subtask["instruction"]),
                                   dependencies=len(inputs), dependency_chars=sum(map(len, inputs.values())))
        context = features.context(self.router.long_input_chars)
        stats = self.ctx.router_memory.stats(context) if self.ctx.router_memory else {}
        choice = choose(self.router.policy, self._candidates(),
                        {m: s for m, s in stats.items() if isinstance(s, ArmStats)}, rng=self._rng,
                        explore=self.router.explore, weights=self._weights())
        self.routes[step.id] = self.model_by_source[step.id] = choice.model
        self.contexts[step.id] = context
        return choice.model, [WorkflowEvent("router.choice", {
            "subtask": step.id, "kind": subtask["kind"], "context": context, "features": features.as_dict(),
            "policy": choice.policy, "pick": choice.model, "explored": choice.explored,
            "estimates": choice.estimates})]

    def _candidates(self) -> list[Candidate]:
        """The pool, each with its expected cost per call and, as the prior `best` goes by, a quality that is its
        price relative to the dearest model's (the strongest model is taken to be the most expensive one)."""
        cents = {name: 100 * models.compute_cost(TYPICAL_PROMPT_TOKENS, TYPICAL_COMPLETION_TOKENS,
                                                 self.ctx.model_config(name).price) for name in self.workers.pool}
        dearest = max(cents.values()) or 1.0
        return [Candidate(model=name, cost_per_call_cents=cost, quality=cost / dearest) for name, cost in cents.items()]

    def _weights(self) -> RewardWeights:
        weights = self.router.reward
        return RewardWeights(alpha=weights.alpha, beta=weights.beta, gamma=weights.gamma)

    # -- the plan as a pipeline ---------------------------------------------------------------------------------

    def _as_pipeline(self) -> WorkflowSpec:
        assert self.plan is not None
        modules = {f"subtask_{s['id']}": ModuleSpec(
            system_message=f"You are a worker for {s['kind']} sub-tasks. Do this sub-task well and answer with its "
                           f"result only: {s['instruction']}") for s in self.plan}
        modules["planner_answer"] = ModuleSpec(
            system_message="You write the final answer to the task from the results of its sub-tasks.",
            model=self.planner.model)
        # A sub-task's model is the router's, picked as the step becomes ready (`_route`); the pool's first until then.
        steps = [PipelineStep(id=s["id"], module=f"subtask_{s['id']}", inputs=s["depends_on"] or ["task"],
                              model=self.routes.get(s["id"], self.workers.pool[0])) for s in self.plan]
        used = {d for s in self.plan for d in s["depends_on"]}
        sinks = [s["id"] for s in self.plan if s["id"] not in used]
        steps.append(PipelineStep(id=JOIN_STEP, module="planner_answer", inputs=sinks, model=self.planner.model))
        pipeline = PipelineSpec(steps=steps, output=JOIN_STEP, max_parallel=len(steps))
        return self.ctx.spec.model_copy(update={"pipeline": pipeline,
                                                "modules": {**(self.ctx.spec.modules or {}), **modules}})

    # -- verifying and learning ---------------------------------------------------------------------------------

    async def _verify(self, subtask: dict[str, Any], step: Mapping[str, Any],
                      token: CancellationToken) -> AsyncIterator[StreamItem]:
        verifier = self.workers.verifier or self.planner.model
        agent = self._agent("verifier", verifier, "You check whether work accomplishes what was asked.")
        prompt = (f"Sub-task: {subtask['instruction']}\n\nResult:\n{step['output']}\n\nJudge how well the result "
                  "accomplishes the sub-task, from 0 (not at all) to 1 (fully). Answer with a JSON object matching "
                  f"this JSON Schema: {json.dumps(VERDICT_SCHEMA)}, and nothing else.")
        message = await self._ask(agent, prompt, token)
        yield message
        success = _score(message.to_text())
        cost_cents = 100 * float(step.get("cost", 0.0))
        latency_s = float(step.get("seconds", 0.0))
        outcome = {"subtask_id": subtask["id"], "kind": subtask["kind"],
                   "context": self.contexts.get(subtask["id"], subtask["kind"]), "model": self.routes[subtask["id"]],
                   "success": success, "cost_cents": cost_cents, "latency_s": latency_s,
                   "reward": reward(success, cost_cents, latency_s, self._weights())}
        if self.ctx.router_memory is not None:
            await self.ctx.router_memory.record(outcome)
        self.verified[subtask["id"]] = outcome
        yield WorkflowEvent("router.outcome", outcome, durable=True)

    def _agent(self, name: str, model: str, system_message: str) -> AssistantAgent:
        persona = Persona(name=name, system_message=system_message, termination_text=self.ctx.termination_text)
        return AssistantAgent(name=name, model_client=self.ctx.model_client(model, persona),
                              system_message=system_message)

    async def _ask(self, agent: AssistantAgent, prompt: str, token: CancellationToken) -> BaseChatMessage:
        result = await agent.run(task=prompt, cancellation_token=token)
        replies = [m for m in result.messages if isinstance(m, BaseChatMessage) and m.source == agent.name]
        return replies[-1]


def _score(text: str) -> float:
    """The verifier's `success`, clamped to [0, 1]; an unreadable verdict counts as 0."""
    verdict = json_in_reply(text)
    try:
        return min(1.0, max(0.0, float(verdict["success"])))
    except (KeyError, TypeError, ValueError):
        return 0.0
