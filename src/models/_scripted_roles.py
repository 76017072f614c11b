"""Who a scripted persona is (planner, coder, reviewer, ...) and what it says in a conversation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from autobots.models._scripted_tasks import code_for_task, evaluate_arithmetic, find_arithmetic, first_line
from autogen_core.models import AssistantMessage, LLMMessage, UserMessage

Role = Literal["planner", "coder", "reviewer", "writer", "researcher", "executor", "assistant"]

# Keyword -> role. The earliest keyword in a text wins, so "A planner that hands steps to the coder"
# is a planner and "Writes python code, then checks it" a coder.
_ROLE_KEYWORDS: tuple[tuple[str, Role], ...] = (
    ("plan", "planner"),
    ("cod", "coder"),
    ("program", "coder"),
    ("engineer", "coder"),
    ("developer", "coder"),
    ("python", "coder"),
    ("review", "reviewer"),
    ("critic", "reviewer"),
    ("check", "reviewer"),
    ("verif", "reviewer"),
    ("writer", "writer"),
    ("writing", "writer"),
    ("research", "researcher"),
)
# Only speaker selection meets agents that run code; AutoGen's CodeExecutorAgent calls itself a terminal.
_EXECUTOR_KEYWORDS: tuple[tuple[str, Role], ...] = (
    ("proxy", "executor"),
    ("execut", "executor"),
    ("terminal", "executor"),
)
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|sh|bash)?[ \t]*\n", re.IGNORECASE)
_FAILED_RUN = re.compile(r"exit ?code[^0-9\n]{0,5}[1-9]|Traceback \(most recent call last\)", re.IGNORECASE)


def classify(name: str, *texts: str | None, executors: bool = False) -> Role:
    """The role for an agent: its name decides first, then each further text in order."""
    keywords = _EXECUTOR_KEYWORDS + _ROLE_KEYWORDS if executors else _ROLE_KEYWORDS
    if executors and name.lower().startswith("user"):
        return "executor"
    for text in (name, *texts):
        lowered = (text or "").lower()
        hits = [(lowered.find(word), role) for word, role in keywords if word in lowered]
        if hits:
            return min(hits)[1]
    return "assistant"


def has_code_block(text: str) -> bool:
    return bool(_CODE_BLOCK.search(text))


def message_text(message: LLMMessage) -> str:
    """The text of any LLM message; images and function calls are left out."""
    content = message.content
    if isinstance(content, str):
        return content
    return "\n".join(part if isinstance(part, str) else str(getattr(part, "content", "")) for part in content)


def task_index(messages: Sequence[LLMMessage]) -> int | None:
    """Where the current task is: the latest message from the human user (source `user`), else the first
    user message. Earlier turns of the session come before it."""
    users = [i for i, m in enumerate(messages) if isinstance(m, UserMessage)]
    from_human = [i for i in users if getattr(messages[i], "source", None) == "user"]
    if from_human:
        return from_human[-1]
    return users[0] if users else None


def task_of(messages: Sequence[LLMMessage]) -> str:
    """The task the conversation is about now (see `task_index`)."""
    index = task_index(messages)
    return message_text(messages[index]) if index is not None else ""


def _current_turn(messages: Sequence[LLMMessage]) -> Sequence[LLMMessage]:
    """The messages from the current task on (earlier session turns excluded)."""
    index = task_index(messages)
    return messages[index:] if index is not None else messages


def reply_for(role: Role, messages: Sequence[LLMMessage], termination: str) -> str:
    """What a persona in `role` says next, given its whole model context."""
    task = task_of(messages)
    gist = first_line(task, 80) or "the task"
    if role == "planner":
        return _plan(gist)
    if role == "coder":
        return _coder_reply(messages, task, termination)
    if role == "reviewer":
        return f"APPROVED: the work on '{gist}' is complete and the result answers the task.\n{termination}"
    latest = _latest_from_others(messages)
    if role == "writer":
        notes = f"It draws on the notes so far: {first_line(latest, 100)} " if latest else ""
        return (
            f"Here is a short write-up on '{gist}'. {notes}The question is stated plainly, the answer "
            f"follows from it step by step, and the conclusion is checked against the task.\n{termination}"
        )
    if role == "researcher":
        terms = _key_terms(task)
        return (
            f"Findings on '{gist}':\n- The question: {gist}\n- Key terms: {', '.join(terms) or 'none'}\n"
            f"- Next step: hand these findings on for the final answer.\n{termination}"
        )
    expression = find_arithmetic(task)
    if expression is not None:
        return f"Answer: {expression} = {evaluate_arithmetic(expression)}\n{termination}"
    return f"Answer: regarding '{gist}', here is a short, direct reply from the scripted model.\n{termination}"


def _plan(gist: str) -> str:
    return (
        f"Plan for '{gist}':\n"
        f"1. Restate the goal: {gist}\n"
        "2. Write a short Python program that computes the answer.\n"
        "3. Run the program and capture its output.\n"
        "4. Check the output and report the result."
    )


def _coder_reply(messages: Sequence[LLMMessage], task: str, termination: str) -> str:
    """Code for the task; or, once its own code block has had a reply from someone else, that reply."""
    messages = _current_turn(messages)
    last_code = max(
        (i for i, m in enumerate(messages) if isinstance(m, AssistantMessage) and has_code_block(message_text(m))),
        default=None,
    )
    if last_code is not None:
        output = next(
            (message_text(m) for m in messages[last_code + 1 :] if isinstance(m, UserMessage)), None
        )
        if output is not None:
            if _FAILED_RUN.search(output):
                return f"The code failed with this output:\n{output.strip()}\n{termination}"
            printed = output.split("Code output:", 1)[-1].strip()
            return f"The result is: {printed}\n{termination}"
    return f"Here is the code to run:\n\n```python\n{code_for_task(task)}\n```"


def _latest_from_others(messages: Sequence[LLMMessage]) -> str:
    """The most recent message from another agent (not the task, not this agent)."""
    later = [m for m in _current_turn(messages) if isinstance(m, UserMessage)][1:]
    return message_text(later[-1]) if later else ""


def _key_terms(task: str) -> list[str]:
    seen: list[str] = []
    for word in re.findall(r"[A-Za-z][A-Za-z\-]{4,}", task):
        if word.lower() not in seen:
            seen.append(word.lower())
    return seen[:3]
