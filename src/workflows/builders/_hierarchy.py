"""hierarchy: teams of teams. A member delegates to its children (agents, a nested group chat, or agents it
spawned) through tools; a child's result is the tool's answer; the root's final answer is the run's reply.

Privileges only narrow: what the declared tree may do was checked at validation (`_hierarchy_checks`); what a
member spawns at run time is checked here, and a refusal answers the tool call with its reason (the model sees
it, the run goes on). A child's token budget is carved from what its parent has left: every token a child spends
counts against each ancestor, and a member whose budget runs out is stopped with a named reason, which its parent
receives as the delegation's result.

The registry of spawned agents and the results of finished delegations are the checkpoint, committed with each
`hierarchy.spawn|terminate|result` event: a resumed run rebuilds the same tree and answers a delegation it had
finished from the record instead of running it again.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autobots.models.schemas import Persona
from autobots.workflows._hierarchy_checks import effective_models, narrowing_problems, parents_of
from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._result import WorkflowEvent, WorkflowResult, strip_termination
from autobots.workflows.builders._team import build_team
from autobots.workflows.schemas import AGENT_NAME_PATTERN, PrivilegesSpec
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelInfo, RequestUsage
from autogen_core.tools import FunctionTool

StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowEvent | WorkflowResult
MAX_TOOL_ITERATIONS = 12


class BudgetExhausted(Exception):
    """A member spent its token budget (its own limit, or what its parent had left)."""


@dataclass
class Budget:
    """Tokens a member may spend: at most `limit`, and never more than its parent has left."""

    limit: float
    parent: Budget | None = None
    used: int = 0

    @property
    def remaining(self) -> float:
        own = self.limit - self.used
        return own if self.parent is None else min(own, self.parent.remaining)

    def child(self, limit: int | None) -> Budget:
        return Budget(limit=min(limit if limit is not None else math.inf, self.remaining), parent=self)

    def spend(self, tokens: int) -> None:
        budget: Budget | None = self
        while budget is not None:
            budget.used += tokens
            budget = budget.parent


class BudgetedClient(ChatCompletionClient):
    """A model client that counts what it spends against a budget and refuses to go on past it."""

    def __init__(self, inner: ChatCompletionClient, budget: Budget, path: str) -> None:
        self._inner, self._budget, self._path = inner, budget, path

    async def create(self, messages: Sequence[LLMMessage], **kwargs: Any) -> CreateResult:
        if self._budget.remaining <= 0:
            raise BudgetExhausted(self._exhausted())
        result = await self._inner.create(messages, **kwargs)
        self._budget.spend(result.usage.prompt_tokens + result.usage.completion_tokens)
        if self._budget.remaining < 0:
            raise BudgetExhausted(self._exhausted())
        return result

    def create_stream(self, messages: Sequence[LLMMessage], **kwargs: Any) -> Any:
        raise NotImplementedError("hierarchy members do not stream")

    def _exhausted(self) -> str:
        limit = self._budget.limit
        return (f"{self._path} was stopped: it spent {self._budget.used} tokens of its budget of "
                f"{'unlimited' if limit == math.inf else int(limit)} (its own max_tokens, or what its parent had "
                "left)")

    async def close(self) -> None:
        await self._inner.close()

    def actual_usage(self) -> RequestUsage:
        return self._inner.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self._inner.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return self._inner.count_tokens(messages, **kwargs)

    def remaining_tokens(self, messages: Sequence[LLMMessage], **kwargs: Any) -> int:
        return self._inner.remaining_tokens(messages, **kwargs)

    @property
    def capabilities(self) -> Any:  # type: ignore[override]
        return self._inner.capabilities

    @property
    def model_info(self) -> ModelInfo:
        return self._inner.model_info


@dataclass
class _Node:
    """A place in the tree: a declared member or a spawned agent."""

    name: str
    path: str
    privileges: PrivilegesSpec
    depth: int
    spawned: dict[str, Any] | None = None  # {template, instructions, parent, model} for a spawned agent
    children: list[str] = field(default_factory=list)


class HierarchyWorkflow:
    """Runs a validated hierarchy spec from its root; resumable with the same tree."""

    resumable = True

    def __init__(self, ctx: BuildContext) -> None:
        assert ctx.spec.hierarchy is not None
        self.ctx = ctx
        self.hierarchy = ctx.spec.hierarchy
        self.parents = parents_of(self.hierarchy)
        self.spawned: dict[str, dict[str, Any]] = {}
        self.results: dict[str, str] = {}  # "path\ntask" -> the delegation's result
        self._queue: asyncio.Queue[BaseChatMessage | WorkflowEvent] = asyncio.Queue()

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        self.spawned = {name: dict(entry) for name, entry in state.get("spawned", {}).items()}
        self.results = dict(state.get("results", {}))

    async def checkpoint(self) -> Mapping[str, Any] | None:
        return {"spawned": {name: dict(entry) for name, entry in self.spawned.items()},
                "results": dict(self.results)}

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        root = self._node(self.hierarchy.root, parent_path=None)
        run_limit = self.ctx.spec.termination.max_tokens or self.ctx.settings.run_max_tokens
        budget = Budget(limit=min(x for x in (root.privileges.max_tokens, run_limit, math.inf) if x is not None))
        work = asyncio.create_task(self._run(root, task[-1].to_text() if task else "", budget, token))
        try:
            while True:
                getter = asyncio.ensure_future(self._queue.get())
                done, _ = await asyncio.wait({work, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    yield getter.result()
                    continue
                getter.cancel()
                break
            while not self._queue.empty():
                yield self._queue.get_nowait()
            reply = work.result()
        finally:
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
        yield WorkflowResult(stop_reason="the root answered", reply=reply, summary=reply,
                             metadata={"hierarchy": {"tree": self.tree(), "spent": budget.used}})

    def tree(self) -> dict[str, Any]:
        """The tree as it stands: declared members and live spawned agents, by path."""
        def walk(name: str, path: str) -> dict[str, Any]:
            children = [*self.hierarchy.members[name].children] if name in self.hierarchy.members else []
            children += [n for n, entry in self.spawned.items() if entry["parent"] == path]
            return {"name": name, "path": path, "spawned": name in self.spawned,
                    "children": [walk(child, f"{path}/{child}") for child in children]}
        return walk(self.hierarchy.root, self.hierarchy.root)

    # -- members ----------------------------------------------------------------------------------------------

    def _node(self, name: str, *, parent_path: str | None) -> _Node:
        path = name if parent_path is None else f"{parent_path}/{name}"
        depth = path.count("/") + 1
        if name in self.spawned:
            entry = self.spawned[name]
            return _Node(name, path, PrivilegesSpec(models=[entry["model"]] if entry.get("model") else None),
                         depth, spawned=entry)
        member = self.hierarchy.members[name]
        live = [n for n, entry in self.spawned.items() if entry["parent"] == path]
        return _Node(name, path, member.privileges, depth, children=[*member.children, *live])

    async def _run(self, node: _Node, task: str, budget: Budget, token: CancellationToken) -> str:
        """Run `node` on `task` to its answer (a nested group chat for the groupchat member)."""
        group = self.ctx.spec.groupchat
        if group is not None and node.name == group.name:
            return await self._run_group(node, task, budget, token)
        system_message, model_name, description = self._identity(node)
        persona = Persona(name=node.name, system_message=system_message, description=description,
                          termination_text=self.ctx.termination_text)
        client = BudgetedClient(self.ctx.model_client(model_name, persona), budget, node.path)
        agent = AssistantAgent(
            name=node.name, model_client=client, tools=self._tools(node, budget, token),
            system_message=system_message or "You are a helpful AI assistant.", description=description or node.name,
            reflect_on_tool_use=True, max_tool_iterations=MAX_TOOL_ITERATIONS,
            model_context=UnboundedChatCompletionContext(initial_messages=list(self.ctx.history)))
        result = await agent.run(task=task, cancellation_token=token)
        answer = ""
        for message in result.messages:
            if isinstance(message, BaseChatMessage) and message.source == node.name:
                await self._queue.put(message)
                if isinstance(message, TextMessage):
                    answer = message.to_text()
        return strip_termination(answer, self.ctx.spec.termination.text) or answer

    async def _run_group(self, node: _Node, task: str, budget: Budget, token: CancellationToken) -> str:
        team = build_team(self.ctx)
        answer = ""
        async for item in team.run_stream(task=task, cancellation_token=token, output_task_messages=False):
            if isinstance(item, BaseChatMessage):
                await self._queue.put(item)
                if item.models_usage is not None:
                    budget.spend(item.models_usage.prompt_tokens + item.models_usage.completion_tokens)
                answer = item.to_text()
        return strip_termination(answer, self.ctx.spec.termination.text) or answer

    def _identity(self, node: _Node) -> tuple[str | None, str, str | None]:
        """(system message, model name, description) of a member or spawned agent."""
        if node.spawned is not None:
            template = self.hierarchy.templates[node.spawned["template"]]
            message = f"{template.system_message}\n\n{node.spawned['instructions']}".strip()
            return message, node.spawned.get("model") or "default", template.description
        agent = self.ctx.spec.agent(node.name)
        assert agent is not None
        return agent.system_message, self.ctx.spec.model_for(agent), agent.description

    # -- tools ------------------------------------------------------------------------------------------------

    def _tools(self, node: _Node, budget: Budget, token: CancellationToken) -> list[FunctionTool]:
        tools: list[FunctionTool] = []
        spawn = node.privileges.spawn
        if node.children or (spawn is not None and spawn.max_children > 0):
            async def delegate(to: str, task: str) -> str:
                return await self._delegate(node, to, task, budget, token)

            reports = ", ".join(node.children) or "none yet"
            tools.append(FunctionTool(delegate, name="delegate", description=(
                "Give a task to one of your reports, who works on it to the end; its answer is returned. "
                f"Your reports: {reports}.")))
        if spawn is not None and spawn.max_children > 0:
            async def spawn_agent(template: str, name: str, instructions: str) -> str:
                return await self._spawn(node, template, name, instructions)

            async def terminate_agent(name: str) -> str:
                return await self._terminate(node, name)

            tools.append(FunctionTool(spawn_agent, name="spawn_agent", description=(
                f"Create a new report for a job from a template ({', '.join(spawn.templates)}), with a name and "
                f"instructions; at most {spawn.max_children} at a time. Then delegate to it.")))
            tools.append(FunctionTool(terminate_agent, name="terminate_agent",
                                      description="End a report you spawned, once its job is done."))
        return tools

    def _parent_path(self, node: _Node) -> str | None:
        return node.path.rsplit("/", 1)[0] if "/" in node.path else None

    async def _delegate(self, node: _Node, to: str, task: str, budget: Budget, token: CancellationToken) -> str:
        current = self._node(node.name, parent_path=self._parent_path(node))
        if to not in current.children:
            reason = f"'{to}' does not report to {node.path}; your reports: {', '.join(current.children) or 'none'}"
            await self._event("hierarchy.delegate", {"path": f"{node.path}/{to}", "from": node.path, "task": task,
                                                     "refused": reason})
            return f"refused: {reason}"
        child = self._node(to, parent_path=node.path)
        key = f"{child.path}\n{task}"
        if key in self.results:  # finished before a restart: the record answers
            return self.results[key]
        await self._event("hierarchy.delegate", {"path": child.path, "from": node.path, "task": task})
        child_budget = budget.child(child.privileges.max_tokens)
        try:
            result = await self._run(child, task, child_budget, token)
        except BudgetExhausted as stopped:
            result = f"stopped: {stopped}"
            await self._event("hierarchy.result", {"path": child.path, "error": str(stopped),
                                                   "spent": child_budget.used})
            return result
        self.results[key] = result
        await self._event("hierarchy.result", {"path": child.path, "result": result, "spent": child_budget.used},
                          durable=True)
        return result

    async def _spawn(self, node: _Node, template: str, name: str, instructions: str) -> str:
        path = f"{node.path}/{name}"
        existing = self.spawned.get(name)
        if existing is not None and (existing["parent"], existing["template"], existing["instructions"]) == \
                (node.path, template, instructions):  # asked again by a resumed run: the same agent
            return self._spawned_message(name, template)
        reason = self._spawn_refusal(node, template, name)
        if reason is not None:
            await self._event("hierarchy.spawn", {"path": path, "template": template, "refused": reason})
            return f"refused: {reason}"
        model = self.hierarchy.templates[template].model or "default"
        self.spawned[name] = {"template": template, "instructions": instructions, "parent": node.path,
                              "model": model}
        await self._event("hierarchy.spawn", {"path": path, "template": template, "model": model}, durable=True)
        return self._spawned_message(name, template)

    @staticmethod
    def _spawned_message(name: str, template: str) -> str:
        return f"spawned '{name}' (template {template}); delegate its job with delegate(to='{name}', task=...)"

    def _spawn_refusal(self, node: _Node, template: str, name: str) -> str | None:
        spawn = node.privileges.spawn
        assert spawn is not None
        live = [n for n, entry in self.spawned.items() if entry["parent"] == node.path]
        if template not in spawn.templates:
            return f"template '{template}' is not one you may spawn ({', '.join(spawn.templates) or 'none'})"
        if len(live) >= spawn.max_children:
            return f"you already have {len(live)} spawned reports, your max_children"
        if len(self.hierarchy.members) + len(self.spawned) >= self.hierarchy.limits.max_agents:
            return f"the hierarchy has {self.hierarchy.limits.max_agents} agents, its limits.max_agents"
        if node.depth + 1 > self.hierarchy.limits.max_depth:
            return f"a report of {node.path} would be at depth {node.depth + 1}, past limits.max_depth"
        if not re.fullmatch(AGENT_NAME_PATTERN, name) or name in self.hierarchy.members or name in self.spawned:
            return f"'{name}' is not a free agent name (letters, digits and _, unique in the run)"
        model = self.hierarchy.templates[template].model or "default"
        # A spawned agent gets one model and no powers of its own; its tokens are carved from its parent's.
        granted = PrivilegesSpec(models=[model], max_tokens=node.privileges.max_tokens)
        allowed = effective_models(self.hierarchy, node.name, self.parents) if node.spawned is None else \
            set(node.privileges.models or [])
        for _, problem in narrowing_problems(granted, node.privileges, parent_models=allowed):
            return f"the spawned agent would exceed your privileges: {problem}"
        return None

    async def _terminate(self, node: _Node, name: str) -> str:
        entry = self.spawned.get(name)
        if entry is None or entry["parent"] != node.path:
            return f"refused: '{name}' is not an agent you spawned"
        del self.spawned[name]
        await self._event("hierarchy.terminate", {"path": f"{node.path}/{name}"}, durable=True)
        return f"terminated '{name}'"

    async def _event(self, type: str, data: dict[str, Any], *, durable: bool = False) -> None:
        await self._queue.put(WorkflowEvent(type, data, durable=durable))
