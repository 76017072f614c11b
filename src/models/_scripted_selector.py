"""Speaker selection for SelectorGroupChat, read from AutoGen's selector prompt.

The default prompt (autogen_agentchat `SelectorGroupChat`) lists the roles as `name: description`
lines, the conversation as `source: content` paragraphs, and the candidates as a Python list after
"select the next role from". Custom prompts work if they keep the candidate list literal.
"""

from __future__ import annotations

import ast
import re

from autobots.models._scripted_roles import Role, classify, has_code_block

_ASKS_FOR_SPEAKER = re.compile(r"select the next (?:role|speaker|agent)|who (?:should )?speaks? next", re.I)
_CANDIDATES = re.compile(r"\[\s*'[^'\n]*'(?:\s*,\s*'[^'\n]*')*\s*\]")
_HISTORY_START = "Read the following conversation"
_HISTORY_END = "Read the above conversation"
_ROLE_LINE = re.compile(r"^([^\s:]+)\s*:\s*(.*)$")


def is_selector_prompt(text: str) -> bool:
    return bool(_ASKS_FOR_SPEAKER.search(text)) and _CANDIDATES.search(text) is not None


def select_speaker(prompt: str) -> str:
    """Exactly one candidate name: planner first, then coder, the executor after a code block, then
    the reviewer; never the last speaker unless it is the only candidate; otherwise round robin."""
    match = _CANDIDATES.search(prompt)
    candidates: list[str] = ast.literal_eval(match.group()) if match else []
    if not candidates:
        return ""
    roles_text, _, rest = prompt.partition(_HISTORY_START)
    descriptions = _parse_roles(roles_text if rest else prompt)
    order = list(descriptions) or candidates
    for name in candidates:
        if name not in order:
            order.append(name)
    speakers, last_content = _parse_history(rest.partition(_HISTORY_END)[0], set(order))
    roles = {name: classify(name, descriptions.get(name), executors=True) for name in order}
    last = speakers[-1] if speakers else None
    allowed = [n for n in candidates if n != last] or candidates

    def first_with(role: Role) -> str | None:
        return next((n for n in order if roles[n] == role and n in allowed), None)

    choice: str | None = None
    if last is None:
        choice = first_with("planner") or first_with("coder")
    elif has_code_block(last_content):
        choice = first_with("executor")
    elif roles.get(last) == "executor":
        choice = first_with("coder")
    elif roles.get(last) == "planner":
        choice = first_with("coder")
    elif roles.get(last) == "coder":
        choice = first_with("reviewer")
    return choice or _round_robin(order, allowed, last)


def _round_robin(order: list[str], allowed: list[str], last: str | None) -> str:
    start = order.index(last) + 1 if last in order else 0
    rotated = order[start:] + order[:start]
    return next(n for n in rotated if n in allowed)


def _parse_roles(text: str) -> dict[str, str]:
    """`name: description` lines, in the order the prompt lists them."""
    roles: dict[str, str] = {}
    for line in text.splitlines():
        if match := _ROLE_LINE.match(line.strip()):
            roles.setdefault(match.group(1), match.group(2).rstrip("."))
    return roles


def _parse_history(text: str, names: set[str]) -> tuple[list[str], str]:
    """Speakers in order (the task's `user` excluded) and the last message's content."""
    speakers: list[str] = []
    last_content: list[str] = []
    for line in text.splitlines():
        source, sep, content = line.partition(":")
        if sep and (source in names or source == "user"):
            speakers.append(source)
            last_content = [content]
        elif speakers:
            last_content.append(line)
    agents = [s for s in speakers if s != "user"]
    return agents, "\n".join(last_content) if agents and speakers[-1] != "user" else ""
