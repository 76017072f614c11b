"""Replies in the format a prompt demands, for the scripted stand-in: a JSON object for a JSON Schema, one of a
list of options. Strategy states (`workflows/builders/_strategy.py`) ask for formats in these words:
"a JSON object matching this JSON Schema: {...}" and "exactly one of these options, and nothing else: a, b"."""

from __future__ import annotations

import json
import re
from typing import Any

_SCHEMA = re.compile(r"a JSON object matching this JSON Schema: (\{.*\}), and nothing else", re.DOTALL)
_ANY_JSON = re.compile(r"Answer (?:again )?with a JSON object, and nothing else")
_OPTIONS = re.compile(r"exactly one of these options, and nothing else: ([^\n]*?)\.?$", re.MULTILINE)
# An agreeable stand-in: where an enum offers a yes, it says yes.
_AGREEABLE = ("APPROV", "ACCEPT", "YES", "PASS", "OK", "TRUE")


def formatted_reply(prompt: str, task: str) -> str | None:
    """The reply `prompt` asks for in a fixed format, or None when it asks for none."""
    if match := _SCHEMA.search(prompt):
        try:
            schema = json.loads(match.group(1))
        except ValueError:
            return "{}"
        if "subtasks" in schema.get("properties", {}):
            return json.dumps(_plan(schema, task))
        return json.dumps(sample(schema))
    if _ANY_JSON.search(prompt):
        return "{}"
    if match := _OPTIONS.search(prompt):
        options = [option.strip() for option in match.group(1).split(",") if option.strip()]
        if options:
            return options[sum(map(ord, task)) % len(options)]  # the same task, the same choice
    return None


def _plan(schema: dict[str, Any], task: str) -> dict[str, Any]:
    """A planner's plan for `task`: a diamond of four sub-tasks over the kinds the schema allows (one to start,
    two that can run at once, one that joins them), fewer when the schema allows fewer."""
    subtasks = schema["properties"]["subtasks"]
    kinds = subtasks["items"]["properties"]["kind"].get("enum") or ["general"]
    gist = task.strip().splitlines()[0][:80] if task.strip() else "the task"
    plan = [
        {"id": "gather", "kind": kinds[0], "instruction": f"Gather what is needed for: {gist}", "depends_on": []},
        {"id": "left", "kind": kinds[1 % len(kinds)], "instruction": f"Work out the first part of: {gist}",
         "depends_on": ["gather"]},
        {"id": "right", "kind": kinds[2 % len(kinds)], "instruction": f"Work out the second part of: {gist}",
         "depends_on": ["gather"]},
        {"id": "combine", "kind": kinds[-1], "instruction": f"Combine both parts into the result for: {gist}",
         "depends_on": ["left", "right"]},
    ]
    return {"subtasks": plan if int(subtasks.get("maxItems", 4)) >= len(plan) else plan[:1]}


def sample(schema: Any, depth: int = 0) -> Any:
    """A value that satisfies a simple JSON Schema (enums, objects, arrays, scalars)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        agreeable = [v for v in schema["enum"] if any(word in str(v).upper() for word in _AGREEABLE)]
        return (agreeable or schema["enum"])[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        keys = schema.get("required") or list(properties)
        return {key: sample(properties.get(key, {"type": "string"}), depth + 1) for key in keys}
    if kind == "array":
        count = int(schema.get("minItems", 1))
        return [sample(schema.get("items", {"type": "string"}), depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        return schema.get("maximum", schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "ok"
