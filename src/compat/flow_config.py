"""A seed client's workflow, `AgentWorkFlowConfig` (the AutoGen-assistant data model), as it arrives in a
request: unions told apart by shape, so that an error names the one branch the client meant, and its path is
the field the client sent (`error_path`). `translator` makes our workflow spec of it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from autobots.errors import InvalidWorkflowSpec
from autobots.workflows.validation import format_location
from pydantic import BaseModel, ConfigDict, Discriminator, Field, SecretStr, Tag, ValidationError, field_validator

OBJECT_TAG, LIST_TAG, VALUE_TAG = "<object>", "<list>", "<value>"


def _shape(value: Any) -> str:
    if isinstance(value, list):
        return LIST_TAG
    return OBJECT_TAG if isinstance(value, dict | BaseModel) else VALUE_TAG


def _object_or(model: Any, other: Any) -> Any:
    """`model | other`, told apart by shape, so errors name one branch (the tag is dropped from paths)."""
    return Annotated[Union[Annotated[model, Tag(OBJECT_TAG)], Annotated[other, Tag(VALUE_TAG)]],  # noqa: UP007
                     Discriminator(_shape)]


class SeedModel(BaseModel):
    """Seed clients send more fields than we read: keep them, ignore them."""

    model_config = ConfigDict(extra="allow")


class SeedModelEntry(SeedModel):
    """One `config_list` entry. `api_key` is used for the run, never stored or returned."""

    model: str = Field(min_length=1, max_length=200)
    api_key: SecretStr | None = None
    base_url: str | None = Field(None, max_length=2000)
    api_base: str | None = Field(None, max_length=2000, description="Older spelling of base_url")


class SeedLLMConfig(SeedModel):
    config_list: list[SeedModelEntry] = Field(default_factory=list, max_length=50)
    temperature: float | None = None


def _unwrap_links(value: Any) -> Any:
    """Agents may come wrapped as `{"agent": {...}, "link": ...}`, like the workflow's own list, or plain."""
    if isinstance(value, list):
        return [item["agent"] if isinstance(item, dict) and "agent" in item and "type" not in item else item
                for item in value]
    return value


class SeedAgentConfig(SeedModel):
    name: str | None = Field(None, max_length=200)
    llm_config: _object_or(SeedLLMConfig, bool) | None = None  # type: ignore[valid-type]
    code_execution_config: bool | str | dict[str, Any] | None = None
    system_message: str | None = None
    max_consecutive_auto_reply: int | None = None
    human_input_mode: str | None = None
    description: str | None = None
    agents: list[SeedAgent] | None = Field(None, max_length=50, description="A groupchat's members")

    _members = field_validator("agents", mode="before")(_unwrap_links)


class SeedGroupChatConfig(SeedModel):
    agents: list[SeedAgent] = Field(default_factory=list, max_length=50)
    max_round: int | None = None
    speaker_selection_method: str | None = None
    allow_repeat_speaker: bool | list[Any] | None = None


class SeedAgent(SeedModel):
    """An agent; a `groupchat` agent lists its members under `agents` (or `groupchat_config.agents`)."""

    name: str | None = Field(None, max_length=200)
    type: Literal["assistant", "userproxy", "groupchat"]
    config: SeedAgentConfig = Field(default_factory=SeedAgentConfig)
    description: str | None = None
    agents: list[SeedAgent] | None = Field(None, max_length=50)
    groupchat_config: SeedGroupChatConfig | None = None

    _members = field_validator("agents", mode="before")(_unwrap_links)


class SeedLink(SeedModel):
    agent_type: Literal["sender", "receiver"] | None = None


class SeedAgentLink(SeedModel):
    agent: SeedAgent
    link: SeedLink | None = None


AgentRef = _object_or(SeedAgent, str)
# The seed data model's `Union[AgentFlowSpec, List[AgentFlowSpec]]` (every seed client sends a list), or a name.
ReceiverRef = Annotated[Union[Annotated[SeedAgent, Tag(OBJECT_TAG)],  # noqa: UP007
                              Annotated[list[AgentRef], Tag(LIST_TAG)],  # type: ignore[valid-type]
                              Annotated[str, Tag(VALUE_TAG)]],
                        Discriminator(_shape)]


class AgentWorkFlowConfig(SeedModel):
    """A seed client's workflow: sender and receiver by name (with `agents`), or as whole agent objects."""

    name: str = Field("seed workflow", min_length=1, max_length=200)
    description: str | None = None
    type: Literal["autonomous", "sequential", "default", "twoagents", "groupchat"] = "autonomous"
    sender: AgentRef | None = None  # type: ignore[valid-type]
    receiver: ReceiverRef | None = None
    agents: list[SeedAgentLink] | None = Field(None, max_length=50)
    summary_method: str | None = None


def error_path(location: Any, *, at: str = "") -> str:
    """A pydantic error location as a dotted path, without union tags: ('agents', 0, 'x') -> 'agents[0].x'."""
    parts = [part for part in location if not (isinstance(part, str) and part in (OBJECT_TAG, LIST_TAG, VALUE_TAG))]
    path = format_location(parts)
    if not at:
        return path
    return f"{at}{'' if path.startswith('[') or not path else '.'}{path}"


def parse_flow_config(data: Any, *, at: str = "flow_config") -> AgentWorkFlowConfig:
    """Validate a raw flow_config; errors name the path under `at`.

    Raises:
        InvalidWorkflowSpec: The document is not an AgentWorkFlowConfig.
    """
    try:
        return AgentWorkFlowConfig.model_validate(data)
    except ValidationError as exc:
        errors = [{"path": error_path(err["loc"], at=at), "message": err["msg"]}
                  for err in exc.errors(include_url=False)]
        raise InvalidWorkflowSpec(errors) from exc


SeedGroupChatConfig.model_rebuild()
SeedAgent.model_rebuild()
