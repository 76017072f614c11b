"""The workflow spec (API.md): pure data, validated against our own schema. No field names code."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from autobots.models.schemas import ModelConfig
from autobots.workflows.strategy_templates import expand as expand_template
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

AGENT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
WorkflowType = Literal["autonomous", "sequential", "groupchat", "pipeline", "strategy", "hierarchy", "planner"]
END_STATE = "END"  # a strategy transition's target that ends the run
TASK_INPUT = "task"  # a pipeline step input naming the user's message rather than another step
SummaryMethod = Literal["last", "llm", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CodeExecutionSpec(_Strict):
    sandbox: Literal["docker", "process", "local"] | None = None
    timeout_s: int | None = Field(None, ge=1, le=3600)
    network: bool = False


class AgentSpec(_Strict):
    name: str = Field(pattern=AGENT_NAME_PATTERN, description="A Python identifier, unique in the workflow")
    kind: Literal["assistant", "userproxy"] = "assistant"
    model: str | None = Field(None, max_length=100, description="A key of `models`; default: `default`")
    system_message: str | None = Field(None, max_length=100_000)
    description: str | None = Field(None, max_length=10_000)
    code_execution: CodeExecutionSpec | None = None
    default_auto_reply: str | None = Field(None, max_length=10_000)
    max_consecutive_auto_reply: int | None = Field(None, ge=0, le=1000)
    human_input_mode: Literal["NEVER"] = "NEVER"


class GroupChatSpec(_Strict):
    name: str = Field("groupchat", pattern=AGENT_NAME_PATTERN)
    agents: list[str] = Field(min_length=1, max_length=50)
    speaker_selection: Literal["auto", "round_robin"] = "auto"
    allow_repeat_speaker: bool = False
    model: str | None = Field(None, max_length=100, description="Model that picks speakers (auto)")
    description: str | None = Field(None, max_length=10_000)


class ModuleSpec(_Strict):
    """A reusable prompt: a pipeline step's system message, and optionally its model."""

    system_message: str = Field(min_length=1, max_length=100_000)
    description: str | None = Field(None, max_length=10_000)
    model: str | None = Field(None, max_length=100, description="A key of `models`; the step's own model wins")


class ExecuteSpec(_Strict):
    """Run the code a step writes; on a non-zero exit, show the agent the error and ask again."""

    sandbox: Literal["docker", "process", "local"] | None = None
    timeout_s: int | None = Field(None, ge=1, le=3600)
    max_attempts: int = Field(3, ge=1, le=10)


class PipelineStep(_Strict):
    id: str = Field(pattern=AGENT_NAME_PATTERN, description="Unique in the pipeline; `task` is reserved")
    agent: str | None = Field(None, max_length=100, description="An assistant of `agents` (or give `module`)")
    module: str | None = Field(None, max_length=100, description="A prompt module (or give `agent`)")
    inputs: list[str] = Field(default_factory=lambda: [TASK_INPUT], max_length=50,
                              description="Step ids, or `task` for the user's message")
    model: str | None = Field(None, max_length=100, description="A key of `models`, for this step only")
    supplement: str | None = Field(None, max_length=10_000, description="An extra instruction for this step")
    execute: ExecuteSpec | None = None


class PipelineSpec(_Strict):
    steps: list[PipelineStep] = Field(min_length=1, max_length=100)
    output: str | None = Field(None, description="The step whose output is the run's reply")
    max_parallel: int = Field(4, ge=1, le=64, description="Steps running at once, at most")


class WhenSpec(_Strict):
    """A condition on a reply: exactly one of `contains`, `regex`, `json` (with `equals` or `in`), `counter`
    (with `at_least`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    contains: str | None = Field(None, max_length=10_000)
    regex: str | None = Field(None, max_length=2_000)
    json_pointer: str | None = Field(None, alias="json", max_length=500,
                                     description="A JSON pointer into the reply parsed as JSON, e.g. /verdict")
    equals: Any = None
    one_of: list[Any] | None = Field(None, alias="in", max_length=100)
    counter: str | None = Field(None, max_length=100)
    at_least: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> WhenSpec:
        kinds = [name for name in ("contains", "regex", "json_pointer", "counter") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError("a condition has exactly one of contains, regex, json, counter")
        if self.json_pointer is not None and ("equals" in self.model_fields_set) == (self.one_of is not None):
            raise ValueError("a json condition takes exactly one of equals, in")
        if self.counter is not None and self.at_least is None:
            raise ValueError("a counter condition needs at_least")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Only the fields the condition uses (`equals` may be null on purpose), so a stored spec reads back."""
        keep_equals = self.json_pointer is not None and self.one_of is None
        return {key: value for key, value in handler(self).items()
                if value is not None or (key == "equals" and keep_equals)}


class TransitionSpec(_Strict):
    """Where a strategy goes after a reply: the first transition whose `when` holds (or `otherwise`)."""

    when: WhenSpec | None = None
    otherwise: bool = False
    to: str = Field(min_length=1, max_length=100, description="A state, or END")

    @model_validator(mode="after")
    def _when_or_otherwise(self) -> TransitionSpec:
        if (self.when is None) == (not self.otherwise):
            raise ValueError("a transition has either when or otherwise: true")
        return self


class ExpectSpec(_Strict):
    """The reply format a state demands; a reply that does not match is re-prompted."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    format: Literal["json", "regex", "choice"]
    json_schema: dict[str, Any] | None = Field(None, alias="schema", description="format json: a JSON Schema")
    pattern: str | None = Field(None, max_length=2_000, description="format regex")
    options: list[str] | None = Field(None, max_length=100, description="format choice")


class StateSpec(_Strict):
    agent: str | None = Field(None, max_length=100, description="An assistant of `agents`; default: the state's name")
    instructions: str | None = Field(None, max_length=20_000, description="What this state asks of its agent")
    expect: ExpectSpec | None = None
    max_errors: int = Field(2, ge=0, le=20, description="Re-prompts for a malformed reply before the run fails")
    next: list[TransitionSpec] = Field(min_length=1, max_length=50)


class CounterSpec(_Strict):
    """Counts the replies of `state` for which `when` holds (derived from the transcript)."""

    state: str = Field(max_length=100)
    when: WhenSpec


class StrategySpec(_Strict):
    """The states and transitions, or `{"template": NAME, ...parameters}` (`strategy_templates`)."""

    start: str = Field(max_length=100)
    states: dict[str, StateSpec] = Field(min_length=1, max_length=100)
    counters: dict[str, CounterSpec] = Field(default_factory=dict, max_length=50)
    max_steps: int = Field(30, ge=1, le=1000, description="Replies accepted before the run ends incomplete")

    @model_validator(mode="before")
    @classmethod
    def _expand_template(cls, data: Any) -> Any:
        return expand_template(data)


class SpawnSpec(_Strict):
    templates: list[str] = Field(default_factory=list, max_length=50)
    max_children: int = Field(0, ge=0, le=100)


class PrivilegesSpec(_Strict):
    """What a member may do; a child's privileges are a subset of its parent's (checked when the tree is
    validated, and for spawned agents when they are spawned). Unset lists mean "whatever the parent has"."""

    code_execution: bool = False
    network: bool = False
    models: list[str] | None = Field(None, max_length=50)
    tools: list[str] | None = Field(None, max_length=50)
    max_tokens: int | None = Field(None, ge=1)
    spawn: SpawnSpec | None = None


class MemberSpec(_Strict):
    children: list[str] = Field(default_factory=list, max_length=50)
    privileges: PrivilegesSpec = Field(default_factory=PrivilegesSpec)


class AgentTemplateSpec(_Strict):
    """What a spawned agent is made from; the spawning member adds its instructions."""

    system_message: str = Field(min_length=1, max_length=100_000)
    description: str | None = Field(None, max_length=10_000)
    model: str | None = Field(None, max_length=100)


class HierarchyLimits(_Strict):
    max_depth: int = Field(3, ge=1, le=10)
    max_agents: int = Field(12, ge=1, le=200)


class HierarchySpec(_Strict):
    root: str = Field(max_length=100)
    members: dict[str, MemberSpec] = Field(min_length=1, max_length=100)
    templates: dict[str, AgentTemplateSpec] = Field(default_factory=dict, max_length=50)
    limits: HierarchyLimits = Field(default_factory=HierarchyLimits)


# A kind names the router's statistics, alone or with an input size after a slash (`code/long`): no slash in it.
SubtaskKind = Annotated[str, StringConstraints(min_length=1, max_length=50, pattern=r"^[^/]+$")]


class PlannerSpec(_Strict):
    model: str = Field("default", max_length=100, description="The model that plans (and joins the results)")
    max_subtasks: int = Field(8, ge=1, le=50)
    max_replans: int = Field(2, ge=0, le=10, description="Re-asks after an invalid plan before the run fails")
    kinds: list[SubtaskKind] = Field(default_factory=lambda: ["research", "code", "write", "math"], min_length=1,
                                     max_length=20)
    system_message: str | None = Field(None, max_length=20_000, description="Added to the planning prompt")


class WorkersSpec(_Strict):
    pool: list[str] = Field(min_length=1, max_length=20, description="Models the router picks from")
    verifier: str | None = Field(None, max_length=100, description="The model that judges each sub-task's result")


class RewardSpec(_Strict):
    """Reward = alpha*success[0..1] - beta*cost[US cents] - gamma*latency[s]."""

    alpha: float = Field(10.0, ge=0)
    beta: float = Field(0.1, ge=0)
    gamma: float = Field(0.01, ge=0)


class RouterSpec(_Strict):
    policy: Literal["fixed", "cheapest", "best", "thompson"] = "thompson"
    explore: float = Field(0.05, ge=0, le=1)
    reward: RewardSpec = Field(default_factory=RewardSpec)
    long_input_chars: int = Field(4_000, ge=1, le=10_000_000,
                                  description="A sub-task whose instruction and dependencies' results reach this many "
                                              "characters is routed (and learned) as `long`, apart from short ones")


class TerminationSpec(_Strict):
    text: str | None = Field("TERMINATE", min_length=1, max_length=200)
    max_messages: int | None = Field(20, ge=1, le=1000)
    timeout_s: int | None = Field(600, ge=1, le=86_400)
    max_tokens: int | None = Field(None, ge=1)


class WorkflowSpec(_Strict):
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    type: WorkflowType
    models: dict[str, ModelConfig] | None = Field(None, max_length=50)
    agents: list[AgentSpec] = Field(default_factory=list, max_length=50)
    modules: dict[str, ModuleSpec] | None = Field(None, max_length=100)
    sender: str | None = None
    receiver: str | None = None
    steps: list[str] | None = Field(None, max_length=100)
    groupchat: GroupChatSpec | None = None
    pipeline: PipelineSpec | None = None
    strategy: StrategySpec | None = None
    hierarchy: HierarchySpec | None = None
    planner: PlannerSpec | None = None
    workers: WorkersSpec | None = None
    router: RouterSpec | None = None
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    summary_method: SummaryMethod = "last"

    def agent(self, name: str) -> AgentSpec | None:
        return next((agent for agent in self.agents if agent.name == name), None)

    def model_for(self, agent: AgentSpec) -> str:
        return agent.model or "default"
