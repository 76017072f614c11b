"""Strategy templates: a spec may say `"strategy": {"template": NAME, ...parameters}` and get the states and
counters written out (the stored spec holds the expansion, so what runs is what the client reads back).

- `planner_reviewer_executor` (agents `planner`, `reviewer`, `executor`; parameter `max_rejects`, default 2): the
  planner proposes, the reviewer answers `{"verdict": "APPROVE" | "REJECT", "comments"?: ...}`; a rejection
  sends the plan back, an approval or the `max_rejects`-th rejection goes on to the executor, then END.
- `coin_poet` (agents `coin`, `poet`): the coin answers `heads` or `tails`; on heads the poet writes a poem, on
  tails a limerick; then END.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

VERDICT_SCHEMA = {"type": "object", "required": ["verdict"],
                  "properties": {"verdict": {"enum": ["APPROVE", "REJECT"]}, "comments": {"type": "string"}}}


def planner_reviewer_executor(max_rejects: int = 2, max_steps: int = 30) -> dict[str, Any]:
    return {
        "start": "planner", "max_steps": max_steps,
        "states": {
            "planner": {"instructions": "Propose a plan for the task; if the reviewer rejected the last one, "
                                        "improve it following the comments.",
                        "next": [{"otherwise": True, "to": "reviewer"}]},
            "reviewer": {"instructions": "Review the latest plan against the task.", "max_errors": 2,
                         "expect": {"format": "json", "schema": VERDICT_SCHEMA},
                         "next": [{"when": {"counter": "rejects", "at_least": max_rejects}, "to": "executor"},
                                  {"when": {"json": "/verdict", "equals": "APPROVE"}, "to": "executor"},
                                  {"otherwise": True, "to": "planner"}]},
            "executor": {"instructions": "Carry out the latest plan and report the result.",
                         "next": [{"otherwise": True, "to": "END"}]}},
        "counters": {"rejects": {"state": "reviewer", "when": {"json": "/verdict", "equals": "REJECT"}}},
    }


def coin_poet(max_steps: int = 10) -> dict[str, Any]:
    return {
        "start": "coin", "max_steps": max_steps,
        "states": {
            "coin": {"instructions": "Flip a coin.", "expect": {"format": "choice", "options": ["heads", "tails"]},
                     "next": [{"when": {"contains": "heads"}, "to": "poem"}, {"otherwise": True, "to": "limerick"}]},
            "poem": {"agent": "poet", "instructions": "Write a four-line poem about the task.",
                     "next": [{"otherwise": True, "to": "END"}]},
            "limerick": {"agent": "poet", "instructions": "Write a limerick about the task.",
                         "next": [{"otherwise": True, "to": "END"}]}},
    }


TEMPLATES: dict[str, Callable[..., dict[str, Any]]] = {
    "planner_reviewer_executor": planner_reviewer_executor,
    "coin_poet": coin_poet,
}


def expand(data: Any) -> Any:
    """A strategy section with its template written out; anything else as it is.

    Raises:
        ValueError: An unknown template or parameter (pydantic reports it at `strategy`).
    """
    if not isinstance(data, dict) or "template" not in data:
        return data
    parameters = dict(data)
    name = parameters.pop("template")
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}; templates: {', '.join(sorted(TEMPLATES))}")
    try:
        return TEMPLATES[name](**parameters)
    except TypeError as err:
        raise ValueError(f"template {name!r}: {err}") from err
