"""The workflow spec (API.md): pure data, validated against our own schema. No field names code."""

from __future__ import annotations

from typing import Literal

from autobots.models.schemas import ModelConfig
from pydantic import BaseModel, ConfigDict, Field

AGENT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
WorkflowType = Literal["autonomous", "sequential", "groupchat"]
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
    agents: list[AgentSpec] = Field(min_length=1, max_length=50)
    sender: str | None = None
    receiver: str | None = None
    steps: list[str] | None = Field(None, max_length=100)
    groupchat: GroupChatSpec | None = None
    termination: TerminationSpec = Field(default_factory=TerminationSpec)
    summary_method: SummaryMethod = "last"

    def agent(self, name: str) -> AgentSpec | None:
        return next((agent for agent in self.agents if agent.name == name), None)

    def model_for(self, agent: AgentSpec) -> str:
        return agent.model or "default"
