"""Tool calls for the scripted stand-in: what a manager in a hierarchy does with `delegate`, `spawn_agent` and
`terminate_agent` (the tools `workflows/builders/_hierarchy.py` gives it), so hierarchies run offline.

The plan, one call per turn, read from the calls already made in the conversation: spawn one worker when it may
(from the first template `spawn_agent` names), delegate the task to each report named in `delegate`'s
description and to the spawned worker, terminate the worker, then answer with what the reports said.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from autogen_core import FunctionCall
from autogen_core.models import AssistantMessage, FunctionExecutionResultMessage, LLMMessage
from autogen_core.tools import Tool, ToolSchema

_REPORTS = re.compile(r"Your reports: ([^.]*)\.")
_TEMPLATES = re.compile(r"from a template \(([^)]*)\)")


def next_tool_call(tools: Sequence[Tool | ToolSchema], messages: Sequence[LLMMessage], *, name: str,
                   task: str) -> FunctionCall | None:
    """The call a scripted manager makes next, or None when it has nothing left to call and should answer."""
    described = {_schema(tool)["name"]: _schema(tool).get("description", "") for tool in tools}
    made = _calls_made(messages)
    if "spawn_agent" in described and not any(call["name"] == "spawn_agent" for call in made):
        templates = _TEMPLATES.search(described["spawn_agent"])
        template = templates.group(1).split(",")[0].strip() if templates else "worker"
        return _call(len(made), "spawn_agent", template=template, name=f"{name}_worker", instructions=task)
    reports = []
    if "delegate" in described:
        listed = _REPORTS.search(described["delegate"])
        reports = [r.strip() for r in (listed.group(1) if listed else "").split(",") if r.strip() != "none yet"]
    spawned = [call["arguments"]["name"] for call in made if call["name"] == "spawn_agent"]
    delegated = {call["arguments"].get("to") for call in made if call["name"] == "delegate"}
    for report in [*reports, *spawned]:
        if report and report not in delegated:
            return _call(len(made), "delegate", to=report, task=task)
    terminated = {call["arguments"].get("name") for call in made if call["name"] == "terminate_agent"}
    for worker in spawned:
        if "terminate_agent" in described and worker not in terminated:
            return _call(len(made), "terminate_agent", name=worker)
    return None


def tool_results(messages: Sequence[LLMMessage]) -> list[str]:
    """What the reports answered (the `delegate` results) in this conversation, in order; the other tools'
    answers when nothing was delegated."""
    results = [result for m in messages if isinstance(m, FunctionExecutionResultMessage) for result in m.content]
    delegated = [result.content for result in results if result.name == "delegate"]
    return delegated or [result.content for result in results]


def _calls_made(messages: Sequence[LLMMessage]) -> list[dict[str, Any]]:
    calls = []
    for message in messages:
        if isinstance(message, AssistantMessage) and isinstance(message.content, list):
            for call in message.content:
                if isinstance(call, FunctionCall):
                    try:
                        arguments = json.loads(call.arguments or "{}")
                    except ValueError:
                        arguments = {}
                    calls.append({"name": call.name, "arguments": arguments})
    return calls


def _call(index: int, tool: str, **arguments: str) -> FunctionCall:
    return FunctionCall(id=f"scripted_call_{index}", name=tool, arguments=json.dumps(arguments))


def _schema(tool: Tool | ToolSchema) -> ToolSchema:
    return tool.schema if isinstance(tool, Tool) else tool
