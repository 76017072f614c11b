"""The `scripted` provider: a deterministic, offline stand-in for a model, for demos and tests.

It is not a model. It reads the persona it speaks for (name, description, system message) and the
conversation, and answers from a fixed script:

- planner ("plan"): a numbered plan for the task; never ends the conversation.
- coder ("cod", "program", "engineer", "developer", "python"): one ```python block for the task
  (arithmetic, lists of primes/squares/even/odd/fibonacci numbers, number ranges, the files in the
  working directory; anything else is printed back); once someone replied to its code, it reports
  that output and ends with the termination text.
- reviewer ("review", "critic", "check", "verif"): "APPROVED: ..." and the termination text.
- writer, researcher, anyone else: a short answer about the task and the termination text.
- A persona named "summar..." or a request to summarize the conversation (see `SUMMARY_REQUEST`):
  a one-paragraph summary, without the termination text.
- SelectorGroupChat's speaker-selection prompt: exactly one candidate name (see `_scripted_selector`).

Token usage is a rough count (a quarter of the characters, plus one per message), so costs and
limits can be exercised; it involves no network and no randomness.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal, Self

from autobots.models._scripted_formats import formatted_reply
from autobots.models._scripted_roles import classify, message_text, reply_for, task_of
from autobots.models._scripted_selector import is_selector_prompt, select_speaker
from autobots.models._scripted_tools import next_tool_call, tool_results
from autobots.models.schemas import Persona
from autogen_core import CancellationToken, Component
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

# How a summary is asked for: "summarize the conversation", "a summary of the chat above", ...
SUMMARY_REQUEST = re.compile(
    r"summar(?:y|ise|ize)\b.{0,40}?\b(?:conversation|chat|discussion|transcript|above|following)",
    re.IGNORECASE | re.DOTALL,
)
TOKEN_LIMIT = 128_000
_SUMMARY_CHARS = 200


class ScriptedClientConfig(BaseModel):
    """Declarative form of the client (AutoGen components can be dumped and loaded)."""

    model: str = "scripted"
    persona: Persona


class ScriptedChatCompletionClient(ChatCompletionClient, Component[ScriptedClientConfig]):
    """A ChatCompletionClient that acts a persona's part from a script (see the module docstring).

    Args:
        persona: Who is speaking; decides the role and the termination text.
        model: The model name reported back; any name works.
    """

    component_type = "model"
    component_config_schema = ScriptedClientConfig
    component_provider_override = "autobots.models.ScriptedChatCompletionClient"

    def __init__(self, persona: Persona, *, model: str = "scripted") -> None:
        self._persona = persona
        self._model = model
        self._role = classify(persona.name, persona.description, persona.system_message)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._last = RequestUsage(prompt_tokens=0, completion_tokens=0)

    @property
    def persona(self) -> Persona:
        return self._persona

    def reply(self, messages: Sequence[LLMMessage]) -> str:
        """The scripted reply to `messages` (what `create` returns as content)."""
        request = "\n".join(message_text(m) for m in messages if isinstance(m, SystemMessage | UserMessage))
        if is_selector_prompt(request):
            return select_speaker(request)
        if "summar" in self._persona.name.lower() or SUMMARY_REQUEST.search(request):
            return _summarize(messages, self._persona.termination_text)
        latest = next((message_text(m) for m in reversed(messages) if isinstance(m, UserMessage)), "")
        formatted = formatted_reply(latest, task_of(messages))
        if formatted is not None:
            return formatted
        return reply_for(self._role, messages, self._persona.termination_text)

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        call = next_tool_call(tools, messages, name=self._persona.name, task=task_of(messages)) if tools else None
        if call is not None:
            usage = RequestUsage(prompt_tokens=self.count_tokens(messages), completion_tokens=_tokens(call.arguments))
            self._count(usage)
            return CreateResult(finish_reason="function_calls", content=[call], usage=usage, cached=False)
        results = tool_results(messages)
        content = self.reply(messages) if not results else _report(results, self._persona.termination_text)
        usage = RequestUsage(prompt_tokens=self.count_tokens(messages), completion_tokens=_tokens(content))
        self._count(usage)
        return CreateResult(finish_reason="stop", content=content, usage=usage, cached=False)

    def _count(self, usage: RequestUsage) -> None:
        self._last = usage
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self._total.completion_tokens + usage.completion_tokens,
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[str | CreateResult, None]:
        result = await self.create(messages)
        assert isinstance(result.content, str)
        for chunk in _chunks(result.content, 3):
            yield chunk
        yield result

    async def close(self) -> None:
        return None

    def actual_usage(self) -> RequestUsage:
        return self._last

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return sum(_tokens(message_text(m)) for m in messages)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return TOKEN_LIMIT - self.count_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> ModelCapabilities:  # type: ignore[override]
        return ModelCapabilities(vision=False, function_calling=True, json_output=False)  # type: ignore[typeddict-item]

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(
            vision=False,
            function_calling=True,
            json_output=False,
            family=ModelFamily.UNKNOWN,
            structured_output=False,
        )

    def _to_config(self) -> ScriptedClientConfig:
        return ScriptedClientConfig(model=self._model, persona=self._persona)

    @classmethod
    def _from_config(cls, config: ScriptedClientConfig) -> Self:
        return cls(config.persona, model=config.model)


def _report(results: list[str], termination: str) -> str:
    """A manager's answer once its tools have answered: what its reports said."""
    firsts = [result.strip().splitlines()[0][:200] for result in results if result.strip()]
    lines = "\n".join(f"- {first}" for first in firsts)
    return f"Here is what my reports found:\n{lines}\n{termination}"


def _tokens(text: str) -> int:
    """A rough, deterministic token count: a quarter of the characters, plus one."""
    return len(text) // 4 + 1


def _chunks(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _summarize(messages: Sequence[LLMMessage], termination: str) -> str:
    """One paragraph: how the conversation began and, if different, how it ended."""
    text = "\n\n".join(message_text(m) for m in messages if not isinstance(m, SystemMessage))
    lines = [line for line in text.replace(termination, " ").splitlines() if not SUMMARY_REQUEST.search(line)]
    text = "\n".join(lines)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    paragraphs = [p for p in paragraphs if p]
    if not paragraphs:
        return "Summary: nothing was discussed."
    start = _clip(paragraphs[0], _SUMMARY_CHARS)
    if len(paragraphs) == 1:
        return f"Summary: {start}"
    return f"Summary: {start} Outcome: {_clip(paragraphs[-1], _SUMMARY_CHARS)}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
