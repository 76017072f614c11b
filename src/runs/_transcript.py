"""Turn AutoGen messages into the transcript entries, usage and cost that a run records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autobots import models
from autobots.models.schemas import ModelConfig
from autobots.workflows.schemas import WorkflowSpec
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    CodeExecutionEvent,
    ModelClientStreamingChunkEvent,
)

_NOT_TRANSCRIBED = (ModelClientStreamingChunkEvent, CodeExecutionEvent)


def transcript_entry(item: BaseAgentEvent | BaseChatMessage) -> dict[str, Any] | None:
    """{source, type, content, usage} for a message worth keeping; None for streaming chunks and the like."""
    if isinstance(item, _NOT_TRANSCRIBED):
        return None
    usage = None
    if item.models_usage is not None:
        usage = {"prompt_tokens": item.models_usage.prompt_tokens,
                 "completion_tokens": item.models_usage.completion_tokens}
    return {"source": item.source, "type": item.type, "content": item.to_text(), "usage": usage}


@dataclass
class UsageMeter:
    """Token usage and cost of a run, priced per agent's model."""

    spec: WorkflowSpec
    model_configs: dict[str, ModelConfig]
    # Sources that are not agents (a pipeline's steps) and the model each used.
    model_by_source: Mapping[str, str] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    _price_by_agent: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for agent in self.spec.agents:
            config = self.model_configs.get(self.spec.model_for(agent))
            self._price_by_agent[agent.name] = config.price if config else None
        for source, model in self.model_by_source.items():
            config = self.model_configs.get(model)
            self._price_by_agent[source] = config.price if config else None

    def add(self, entry: dict[str, Any]) -> None:
        usage = entry.get("usage")
        if not usage:
            return
        source = entry["source"]
        if source not in self._price_by_agent and source in self.model_by_source:  # routed after the start
            config = self.model_configs.get(self.model_by_source[source])
            self._price_by_agent[source] = config.price if config else None
        prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cost += models.compute_cost(prompt, completion, self._price_by_agent.get(entry["source"]))

    def usage(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens}
