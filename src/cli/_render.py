"""Rich rendering of runs and transcripts: agent names, prose, highlighted code blocks, code runs, the totals."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from autobots.client import Message, Run, RunEvent
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text

_FENCE = re.compile(r"```([\w+#.-]*)[ \t]*\n(.*?)```", re.DOTALL)
_AGENT_STYLES = ("bold cyan", "bold magenta", "bold green", "bold yellow", "bold blue", "bold red")
_STATUS_STYLES = {"completed": "bold green", "incomplete": "bold yellow", "failed": "bold red",
                  "cancelled": "bold red"}
_QUIET_EVENTS = frozenset({"run.queued", "run.started", "done"})


def agent_style(name: str) -> str:
    """A colour per agent name, the same in every run."""
    return _AGENT_STYLES[sum(name.encode()) % len(_AGENT_STYLES)]


def content_renderables(content: str) -> list[RenderableType]:
    """A message's text with its fenced code blocks as highlighted code."""
    parts: list[RenderableType] = []
    position = 0
    for match in _FENCE.finditer(content):
        prose = content[position:match.start()].strip()
        if prose:
            parts.append(Text(prose))
        parts.append(Syntax(match.group(2).rstrip("\n"), match.group(1) or "text", theme="monokai",
                            word_wrap=True, background_color="default"))
        position = match.end()
    rest = content[position:].strip()
    if rest:
        parts.append(Text(rest))
    return parts


def usage_line(usage: dict[str, Any] | None, cost: float | None) -> Text:
    usage = usage or {}
    return Text(f"tokens: {usage.get('total_tokens', 0)} (prompt {usage.get('prompt_tokens', 0)}, "
                f"completion {usage.get('completion_tokens', 0)}) · cost: ${cost or 0:.6f}", style="dim")


class TranscriptPrinter:
    """Prints a run's events as they arrive, and messages of a session's history.

    Args:
        console: Where to print.
    """

    def __init__(self, console: Console) -> None:
        self.console = console

    def agent_message(self, source: str, content: str) -> None:
        self.console.print(Text(source, style=agent_style(source)))
        self.console.print(Group(*content_renderables(content)) if content.strip() else Text("(empty)", style="dim"))
        self.console.print()

    def code_execution(self, data: dict[str, Any]) -> None:
        exit_code = data.get("exit_code")
        style = "green" if exit_code == 0 else "red"
        title = Text.assemble(("ran code", "dim"), " ", (f"exit {exit_code}", style))
        if data.get("agent"):
            title = Text.assemble((str(data["agent"]), agent_style(str(data["agent"]))), " ", title)
        code = Syntax(str(data.get("code", "")).rstrip(), str(data.get("language") or "python"), theme="monokai",
                      word_wrap=True, background_color="default")
        output = Text(str(data.get("output", "")).rstrip() or "(no output)")
        self.console.print(Panel(Group(code, Text("output:", style="dim"), output), title=title, title_align="left",
                                 border_style=style))

    def event(self, event: RunEvent) -> None:
        """One event of a live run."""
        data = event.data
        if event.type == "message":
            self.agent_message(str(data.get("source", "?")), str(data.get("content", "")))
        elif event.type == "code.execution":
            self.code_execution(data)
        elif event.type.startswith("run.") and event.type not in _QUIET_EVENTS:
            status = event.type.removeprefix("run.")
            line = Text(status, style=_STATUS_STYLES.get(status, "bold"))
            error = data.get("error") or {}
            detail = error.get("message") or (data.get("incomplete_details") or {}).get("reason") or \
                data.get("stop_reason")
            if detail:
                line.append(f": {detail}", style="dim")
            self.console.print(line)
        elif event.type not in _QUIET_EVENTS:
            self.console.print(Text(f"· {event.type} {json.dumps(data, separators=(',', ':'))[:200]}", style="dim"))

    def summary(self, run: Run) -> None:
        """The run's final status with its tokens and cost."""
        self.console.print(Text.assemble((f"run {run.id} ", "dim"),
                                         (run.status, _STATUS_STYLES.get(run.status, "bold"))))
        self.console.print(usage_line(run.usage.model_dump(), run.cost))

    def message(self, message: Message) -> None:
        """One message of a session's history, with an assistant reply's inner transcript and code runs."""
        stamp = datetime.fromtimestamp(message.created_at).strftime("%Y-%m-%d %H:%M:%S")
        self.console.rule(Text(f"{message.role} · {stamp} · {message.id}", style="bold"), align="left")
        meta = message.metadata
        inner = meta.get("messages") or []
        if message.role == "user" or not inner:
            self.console.print(Group(*content_renderables(message.content)))
        for item in inner:
            if item.get("source") != "user":
                self.agent_message(str(item.get("source", "?")), str(item.get("content", "")))
        for execution in meta.get("code_executions") or []:
            self.code_execution(execution)
        if message.role == "assistant":
            self.console.print(usage_line(meta.get("usage"), meta.get("cost")))
