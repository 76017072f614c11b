"""What a builder needs from the rest of the process: model clients, the run's sandbox, limits."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from autobots import models
from autobots.config import Settings
from autobots.errors import SandboxUnavailable
from autobots.models.schemas import ModelConfig, Persona
from autobots.workflows.builders._proxy import ExecutionListener, UserProxy
from autobots.workflows.schemas import AgentSpec, ModuleSpec, WorkflowSpec
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent
from autogen_core.code_executor import CodeExecutor
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import ChatCompletionClient, LLMMessage

if TYPE_CHECKING:
    from autobots.sandbox import SandboxManager

DEFAULT_PROXY_DESCRIPTION = (
    "Acts for the user: runs the python or shell code blocks it receives and reports the output."
)
DEFAULT_ASSISTANT_DESCRIPTION = "A helpful AI assistant."


class RouterMemory(Protocol):
    """What a planner's router learned for this user's workflow, and where its outcomes go (the run engine
    keeps it in the database)."""

    def stats(self, context: str) -> Mapping[str, Any]:
        """ArmStats by model for sub-tasks of `context`: a kind and input size (`code/long`, see
        `autobots.router.arms_for`)."""
        ...

    async def record(self, outcome: Mapping[str, Any]) -> None:
        """Keep one sub-task's outcome ({subtask_id, kind, context, model, success, cost_cents, latency_s, reward}) and
        learn from it (once per sub-task of a run, however often it is recorded)."""
        ...


@dataclass
class BuildContext:
    """Per-run resources. Call `close()` when the run ends, whatever happened.

    Args:
        spec: The validated workflow.
        model_configs: Model entries by name, secrets resolved (never persisted).
        settings: Server settings (limits, timeouts).
        run_id: The run these objects serve (names its sandbox workspace).
        sandbox: The process's sandbox manager, or None when code execution is impossible.
        on_code_execution: Told about every sandboxed execution.
        history: Earlier turns of the session, preloaded into every assistant's model context (user turns as
            user messages, replies as assistant messages), so only the new message is the team's task.
        modules: The user's prompt modules by name (their library), which pipeline steps may name.
        router_memory: A planner's router statistics and outcome sink (None outside planner runs).
    """

    spec: WorkflowSpec
    model_configs: dict[str, ModelConfig]
    settings: Settings
    run_id: str
    sandbox: SandboxManager | None = None
    on_code_execution: ExecutionListener | None = None
    history: list[LLMMessage] = field(default_factory=list)
    modules: Mapping[str, ModuleSpec] = field(default_factory=dict)
    router_memory: RouterMemory | None = None
    _clients: list[ChatCompletionClient] = field(default_factory=list)
    _client_by_model: dict[str, ChatCompletionClient] = field(default_factory=dict)
    _executors: dict[str, CodeExecutor] = field(default_factory=dict)
    _kinds_used: set[str] = field(default_factory=set)

    def with_spec(self, spec: WorkflowSpec) -> BuildContext:
        """The same run's context for a derived spec (a planner's plan as a pipeline): the model clients and
        sandbox executors it opens are this context's, closed with it."""
        return dataclasses.replace(self, spec=spec, _clients=self._clients, _client_by_model=self._client_by_model,
                                   _executors=self._executors, _kinds_used=self._kinds_used)

    @property
    def termination_text(self) -> str:
        return self.spec.termination.text or "TERMINATE"

    def model_client(self, model_name: str, persona: Persona) -> ChatCompletionClient:
        """The run's client for the model `model_name`, speaking for `persona`. Only the scripted stand-in speaks
        as someone; any other client serves every agent and step of the run that uses its model, as a script of
        the library shares one: a client per agent cost each run a client, a connection pool and a connection
        per agent (a burst of runs builds all of them at once)."""
        config = self.model_configs[model_name]
        shared = not models.is_scripted(config)
        if shared and model_name in self._client_by_model:
            return self._client_by_model[model_name]
        client = models.create_model_client(config, persona=persona, settings=self.settings)
        self._clients.append(client)
        if shared:
            self._client_by_model[model_name] = client
        return client

    def model_config(self, model_name: str) -> ModelConfig:
        return self.model_configs[model_name]

    def build_agent(self, agent: AgentSpec) -> ChatAgent:
        """A fresh AutoGen agent for `agent` (agents are not shared between teams)."""
        if agent.kind == "userproxy":
            return self._build_proxy(agent)
        persona = Persona(name=agent.name, system_message=agent.system_message, description=agent.description,
                          termination_text=self.termination_text)
        system_message = agent.system_message or (
            f"You are a helpful AI assistant. Solve the task step by step. "
            f"Reply with {self.termination_text} when the task is done."
        )
        return AssistantAgent(
            name=agent.name,
            model_client=self.model_client(self.spec.model_for(agent), persona),
            system_message=system_message,
            description=agent.description or _first_sentence(agent.system_message) or DEFAULT_ASSISTANT_DESCRIPTION,
            model_context=UnboundedChatCompletionContext(initial_messages=list(self.history)),
        )

    async def code_executor(self, key: str, *, kind: str | None, timeout_s: int | None,
                            network: bool = False) -> CodeExecutor:
        """The run's sandbox executor for `key` (an agent or a step), opened on first use.

        Raises:
            SandboxUnavailable: The server has no sandbox (validation refuses such specs beforehand).
        """
        if self.sandbox is None:
            raise SandboxUnavailable("this server has no sandbox that may run code")
        if key not in self._executors:
            self._executors[key] = await self.sandbox.open_executor(run_id=self.run_id, kind=kind,
                                                                    timeout_s=timeout_s, network=network)
            self._kinds_used.add(str(getattr(self._executors[key], "kind", "unknown")))
        return self._executors[key]

    def _build_proxy(self, agent: AgentSpec) -> UserProxy:
        execution = agent.code_execution
        factory = None
        if execution is not None and self.sandbox is not None:

            async def open_executor() -> CodeExecutor:
                return await self.code_executor(agent.name, kind=execution.sandbox, timeout_s=execution.timeout_s,
                                                network=execution.network)

            factory = open_executor
        # The termination text must not appear here: it would end the chat on the proxy's own turn.
        auto_reply = agent.default_auto_reply or (
            "There is no code for me to run. Continue with the task; if it is complete, end the conversation "
            "as instructed."
        )
        return UserProxy(agent.name, description=agent.description or DEFAULT_PROXY_DESCRIPTION,
                         auto_reply=auto_reply, executor_factory=factory, on_execution=self.on_code_execution)

    @property
    def sandbox_used(self) -> str | None:
        """The sandbox backend(s) this run executed code in, e.g. `docker`; None if it ran no code."""
        return ",".join(sorted(self._kinds_used)) or None

    async def close(self) -> None:
        for client in self._clients:
            try:
                await client.close()
            except Exception:
                pass
        self._clients.clear()
        self._client_by_model.clear()
        if self._executors and self.sandbox is not None:
            await self.sandbox.release(self.run_id)
        self._executors.clear()


def _first_sentence(text: str | None) -> str | None:
    if not text:
        return None
    sentence = text.strip().split(".")[0].strip()
    return sentence[:300] or None
