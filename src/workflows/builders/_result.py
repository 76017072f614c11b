"""What a compiled workflow yields at the end, and how its reply and summary are derived."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autobots.models.schemas import Persona
from autobots.workflows.builders._context import BuildContext
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core.models import SystemMessage, UserMessage

SUMMARY_PROMPT = (
    "Summarize the conversation below for someone who will continue the work: the task, what was done "
    "and the result, in at most five sentences. Do not add anything else."
)


@dataclass
class WorkflowResult:
    messages: list[BaseAgentEvent | BaseChatMessage] = field(default_factory=list)
    stop_reason: str | None = None
    reply: str = ""
    summary: str | None = None
    # A limit stopped the workflow before its own end: the run ends `incomplete` (API.md "Runs").
    incomplete_reason: str | None = None
    # What the workflow type adds to the reply's metadata (a pipeline: its `steps`).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class WorkflowEvent:
    """Progress of a workflow type with steps (pipeline steps, strategy transitions) for the run's event stream.

    A `durable` one is committed, with the workflow's checkpoint, before the workflow is resumed: what follows it
    may rely on it being on disk (a resumed attempt continues from there).
    """

    type: str
    data: dict[str, Any]
    durable: bool = False


NOT_JSON = object()  # what `json_in_reply` answers for a reply that holds no JSON
_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(.*?)```", re.DOTALL)


def json_in_reply(reply: str) -> Any:
    """A model's reply read as JSON: the whole text, else its first fenced block that parses; `NOT_JSON` when
    neither does (JSON's own `null` is a value)."""
    for candidate in (reply.strip(), *(block.strip() for block in _FENCED_JSON.findall(reply))):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return NOT_JSON


def strip_termination(text: str, termination_text: str | None) -> str:
    if termination_text:
        text = text.replace(termination_text, "")
    return text.strip()


def last_reply(messages: Sequence[BaseAgentEvent | BaseChatMessage], termination_text: str | None) -> str:
    """The last non-empty agent message, termination text removed."""
    for message in reversed(messages):
        if isinstance(message, BaseChatMessage) and message.source != "user":
            text = strip_termination(message.to_text(), termination_text)
            if text:
                return text
    return ""


def transcript_text(messages: Sequence[BaseAgentEvent | BaseChatMessage], limit: int = 20_000) -> str:
    lines = [f"{m.source}: {m.to_text()}" for m in messages if isinstance(m, BaseChatMessage)]
    return "\n\n".join(lines)[-limit:]


async def summarize(ctx: BuildContext, messages: Sequence[BaseAgentEvent | BaseChatMessage],
                    *, model_name: str) -> str:
    """summary_method = llm: ask the workflow's model for a summary of the transcript."""
    client = ctx.model_client(model_name, Persona(name="summarizer", system_message=SUMMARY_PROMPT,
                                                  termination_text=ctx.termination_text))
    result = await client.create([
        SystemMessage(content=SUMMARY_PROMPT),
        UserMessage(content=transcript_text(messages), source="user"),
    ])
    content = result.content if isinstance(result.content, str) else str(result.content)
    return strip_termination(content, ctx.termination_text)


async def finish(ctx: BuildContext, messages: list[BaseAgentEvent | BaseChatMessage],
                 stop_reason: str | None, *, summary_model: str | None,
                 incomplete_reason: str | None = None) -> WorkflowResult:
    reply = last_reply(messages, ctx.spec.termination.text)
    method = ctx.spec.summary_method
    if method == "none":
        summary = None
    elif method == "llm" and summary_model is not None and messages:
        summary = await summarize(ctx, messages, model_name=summary_model)
    else:
        summary = reply
    return WorkflowResult(messages=messages, stop_reason=stop_reason, reply=reply, summary=summary,
                          incomplete_reason=incomplete_reason)
