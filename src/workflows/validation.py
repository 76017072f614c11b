"""Parse and validate workflow specs, collecting every problem as {path, message}."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml
from autobots.errors import InvalidRequest, InvalidWorkflowSpec
from autobots.models.access import ModelAccess
from autobots.workflows._hierarchy_checks import hierarchy_errors
from autobots.workflows._pipeline_checks import pipeline_errors
from autobots.workflows._strategy_checks import strategy_errors
from autobots.workflows.schemas import AgentSpec, ModuleSpec, WorkflowSpec
from pydantic import ValidationError

SpecError = dict[str, str]


def format_location(location: Iterable[Any]) -> str:
    """('agents', 1, 'model') -> 'agents[1].model'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def parse_spec_text(text: str, content_type: str) -> Any:
    """Decode a JSON or YAML document; a syntax error, or nesting too deep to decode, is a 400 naming the format."""
    kind = "YAML" if "yaml" in content_type else "JSON"
    try:
        if kind == "YAML":
            document = yaml.safe_load(text)
            if _holds_nul(document):  # YAML spells it "\0", "\x00" or "\u0000"; JSON bodies are checked on arrival
                raise InvalidRequest("the body holds a NUL character, which no field accepts", code="invalid_body")
            return document
        import json

        return json.loads(text)
    except RecursionError as exc:  # both decoders recurse once per nesting level
        raise InvalidRequest(f"the body is not valid {kind}: it is nested too deeply", code="invalid_body") from exc
    except (yaml.YAMLError, ValueError) as exc:
        raise InvalidRequest(f"the body is not valid {kind}: {exc}", code="invalid_body") from exc


def _holds_nul(document: Any) -> bool:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def check_spec(
    data: Any, *, available_sandboxes: frozenset[str] | None = None, default_sandbox: str | None = None,
    has_default_model: bool = True, access: ModelAccess | None = None,
    library: Mapping[str, ModuleSpec] | None = None,
) -> tuple[WorkflowSpec | None, list[SpecError]]:
    """Validate `data` as a workflow spec. Returns the spec (when valid) and every error found.

    `access` adds the server's model rules (endpoints, keys, addresses without resolving host names);
    `library` is the user's prompt modules, which pipeline steps may name.
    """
    if not isinstance(data, dict):
        return None, [{"path": "", "message": "a workflow spec must be an object"}]
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        return None, [
            {"path": format_location(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
    errors = list(_semantic_errors(spec, has_default_model=has_default_model, library=library or {}))
    if available_sandboxes is not None:
        errors.extend(_sandbox_errors(spec, available_sandboxes, default_sandbox))
    if access is not None:
        for name, model in (spec.models or {}).items():
            errors.extend(access.entry_errors(name, model))
    return (None if errors else spec), errors


def validate_spec(data: Any, *, param_prefix: str = "", **kwargs: Any) -> WorkflowSpec:
    """Like `check_spec`, but raises `InvalidWorkflowSpec` listing every error (params under `param_prefix`)."""
    spec, errors = check_spec(data, **kwargs)
    if spec is None:
        raise InvalidWorkflowSpec(errors, param_prefix=param_prefix)
    return spec


def _semantic_errors(spec: WorkflowSpec, *, has_default_model: bool,
                     library: Mapping[str, ModuleSpec]) -> Iterable[SpecError]:
    names: dict[str, int] = {}
    for index, agent in enumerate(spec.agents):
        if agent.name in names:
            yield {"path": f"agents[{index}].name", "message": f"duplicate agent name '{agent.name}'"}
        names.setdefault(agent.name, index)
        yield from _model_reference_errors(spec, agent, index, has_default_model)
        if agent.kind == "assistant" and agent.code_execution is not None:
            yield {"path": f"agents[{index}].code_execution",
                   "message": "only userproxy agents execute code; give the code_execution to a userproxy"}
    group = spec.groupchat
    group_name = group.name if group else None
    if group is not None:
        if group.name in names:
            yield {"path": "groupchat.name", "message": f"'{group.name}' is also an agent name"}
        seen: set[str] = set()
        for index, member in enumerate(group.agents):
            path = f"groupchat.agents[{index}]"
            if member == group.name:
                yield {"path": path, "message": "a groupchat cannot contain itself (cycle)"}
            elif member not in names:
                yield {"path": path, "message": f"unknown agent '{member}'"}
            if member in seen:
                yield {"path": path, "message": f"'{member}' is listed twice"}
            seen.add(member)
        if group.speaker_selection == "auto":
            selector = group.model or "default"
            if not _model_exists(spec, selector, has_default_model):
                yield {"path": "groupchat.model",
                       "message": f"automatic speaker selection needs a model; '{selector}' is not defined in models"}
    yield from _type_errors(spec, names, group_name)
    if spec.type == "pipeline":
        yield from pipeline_errors(spec, library=library,
                                   model_exists=lambda name: _model_exists(spec, name, has_default_model))
    elif spec.type == "strategy":
        yield from strategy_errors(spec)
    elif spec.type == "hierarchy":
        yield from hierarchy_errors(spec)
    elif spec.type == "planner":
        yield from _planner_errors(spec, has_default_model)


def _model_exists(spec: WorkflowSpec, name: str, has_default_model: bool) -> bool:
    if spec.models is None:
        return name == "default" and has_default_model
    return name in spec.models


def _model_reference_errors(spec: WorkflowSpec, agent: AgentSpec, index: int,
                            has_default_model: bool) -> Iterable[SpecError]:
    if agent.kind != "assistant" and agent.model is None:
        return
    name = spec.model_for(agent)
    if _model_exists(spec, name, has_default_model):
        return
    if spec.models is None:
        message = f"model '{name}' is missing: the spec has no models section"
    else:
        message = f"unknown model '{name}'; models defines: {', '.join(sorted(spec.models)) or 'nothing'}"
    yield {"path": f"agents[{index}].model", "message": message}


def _type_errors(spec: WorkflowSpec, names: dict[str, int], group_name: str | None) -> Iterable[SpecError]:
    if spec.type in ("autonomous", "sequential", "groupchat") and not spec.agents:
        yield {"path": "agents", "message": f"a {spec.type} workflow needs at least one agent"}
    if spec.type == "autonomous":
        if not spec.sender:
            yield {"path": "sender", "message": "an autonomous workflow needs a sender"}
        elif spec.sender not in names:
            yield {"path": "sender", "message": f"unknown agent '{spec.sender}'"}
        if not spec.receiver:
            yield {"path": "receiver", "message": "an autonomous workflow needs a receiver"}
        elif spec.receiver not in names and spec.receiver != group_name:
            yield {"path": "receiver",
                   "message": f"'{spec.receiver}' is neither an agent nor the groupchat of this workflow"}
        elif spec.sender and spec.receiver == spec.sender:
            yield {"path": "receiver", "message": "the receiver must differ from the sender"}
    elif spec.type == "sequential":
        if not spec.steps:
            yield {"path": "steps", "message": "a sequential workflow needs at least one step"}
        for index, step in enumerate(spec.steps or []):
            if step not in names:
                yield {"path": f"steps[{index}]", "message": f"unknown agent '{step}'"}
            elif spec.sender and step == spec.sender:
                yield {"path": f"steps[{index}]", "message": "a step cannot be the sender itself"}
        if spec.sender and spec.sender not in names:
            yield {"path": "sender", "message": f"unknown agent '{spec.sender}'"}
    elif spec.type == "groupchat":
        if spec.groupchat is None:
            yield {"path": "groupchat", "message": "a groupchat workflow needs a groupchat section"}
        elif len(spec.groupchat.agents) < 2:
            yield {"path": "groupchat.agents", "message": "a groupchat needs at least two agents"}


def _planner_errors(spec: WorkflowSpec, has_default_model: bool) -> Iterable[SpecError]:
    if spec.planner is None:
        yield {"path": "planner", "message": "a planner workflow needs a planner section"}
    elif not _model_exists(spec, spec.planner.model, has_default_model):
        yield {"path": "planner.model", "message": f"unknown model '{spec.planner.model}'"}
    if spec.workers is None:
        yield {"path": "workers", "message": "a planner workflow needs workers: the pool the router picks from"}
        return
    for index, name in enumerate(spec.workers.pool):
        if not _model_exists(spec, name, has_default_model):
            yield {"path": f"workers.pool[{index}]", "message": f"unknown model '{name}'"}
    if spec.workers.verifier is not None and not _model_exists(spec, spec.workers.verifier, has_default_model):
        yield {"path": "workers.verifier", "message": f"unknown model '{spec.workers.verifier}'"}


def _sandbox_errors(spec: WorkflowSpec, available: frozenset[str], default: str | None) -> Iterable[SpecError]:
    executions = [(f"agents[{index}].code_execution", agent.code_execution) for index, agent in enumerate(spec.agents)]
    if spec.pipeline is not None:
        executions += [(f"pipeline.steps[{index}].execute", step.execute)
                       for index, step in enumerate(spec.pipeline.steps)]
    for path, execution in executions:
        if execution is None:
            continue
        wanted = execution.sandbox or default
        if wanted is None:
            yield {"path": path,
                   "message": "this server has no sandbox that may run code (no Docker engine, no bubblewrap, "
                              "and 'local' not configured)"}
        elif wanted not in available:
            offered = ", ".join(sorted(available)) or "none"
            yield {"path": f"{path}.sandbox",
                   "message": f"sandbox '{wanted}' is not available on this server (available: {offered})"}
