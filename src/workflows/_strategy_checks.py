"""What makes a strategy spec invalid: every problem with its path (API.md "Strategies")."""

from __future__ import annotations

import re
from collections.abc import Iterable

import jsonschema
from autobots.workflows.schemas import END_STATE, StrategySpec, WhenSpec, WorkflowSpec

SpecError = dict[str, str]


def state_agent(name: str, strategy: StrategySpec) -> str:
    """The agent a state runs: its own `agent`, else the agent named like the state."""
    return strategy.states[name].agent or name


def strategy_errors(spec: WorkflowSpec) -> Iterable[SpecError]:
    strategy = spec.strategy
    if strategy is None:
        yield {"path": "strategy", "message": "a strategy workflow needs a strategy section"}
        return
    states = strategy.states
    if END_STATE in states:
        yield {"path": f"strategy.states.{END_STATE}", "message": f"'{END_STATE}' ends the run; it cannot be a state"}
    if strategy.start not in states:
        yield {"path": "strategy.start", "message": f"unknown state '{strategy.start}'"}
    for name, state in states.items():
        path = f"strategy.states.{name}"
        agent = spec.agent(state_agent(name, strategy))
        if agent is None:
            yield {"path": f"{path}.agent", "message": f"unknown agent '{state_agent(name, strategy)}'"}
        elif agent.kind != "assistant":
            yield {"path": f"{path}.agent", "message": f"'{agent.name}' is a {agent.kind}; a state runs an assistant"}
        if state.expect is not None:
            yield from _expect_errors(path, state.expect.format, state.expect.json_schema, state.expect.pattern,
                                      state.expect.options)
        for index, transition in enumerate(state.next):
            at = f"{path}.next[{index}]"
            if transition.to != END_STATE and transition.to not in states:
                yield {"path": f"{at}.to", "message": f"unknown state '{transition.to}' (states: "
                                                      f"{', '.join(sorted(states))}, or {END_STATE})"}
            if transition.when is not None:
                yield from _when_errors(f"{at}.when", transition.when, strategy)
    for name, counter in strategy.counters.items():
        if counter.state not in states:
            yield {"path": f"strategy.counters.{name}.state", "message": f"unknown state '{counter.state}'"}
        if counter.when.counter is not None:
            yield {"path": f"strategy.counters.{name}.when", "message": "a counter counts replies, not counters"}
        else:
            yield from _when_errors(f"strategy.counters.{name}.when", counter.when, strategy)
    if strategy.start in states:
        yield from _graph_errors(strategy)


def _expect_errors(path: str, kind: str, schema: dict | None, pattern: str | None,
                   options: list[str] | None) -> Iterable[SpecError]:
    if kind == "json":
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as err:
                where = "/".join(str(part) for part in err.absolute_path)
                yield {"path": f"{path}.expect.schema", "message": f"invalid JSON Schema"
                                                                  f"{f' at {where}' if where else ''}: {err.message}"}
    elif kind == "regex":
        if not pattern:
            yield {"path": f"{path}.expect.pattern", "message": "format regex needs a pattern"}
        else:
            yield from _regex_errors(f"{path}.expect.pattern", pattern)
    elif not options:
        yield {"path": f"{path}.expect.options", "message": "format choice needs at least one option"}


def _when_errors(path: str, when: WhenSpec, strategy: StrategySpec) -> Iterable[SpecError]:
    if when.regex is not None:
        yield from _regex_errors(f"{path}.regex", when.regex)
    if when.json_pointer is not None and when.json_pointer and not when.json_pointer.startswith("/"):
        yield {"path": f"{path}.json", "message": "a JSON pointer starts with '/' (or is empty for the whole reply)"}
    if when.counter is not None and when.counter not in strategy.counters:
        yield {"path": f"{path}.counter", "message": f"unknown counter '{when.counter}'"}


def _regex_errors(path: str, pattern: str) -> Iterable[SpecError]:
    try:
        re.compile(pattern)
    except re.error as err:
        yield {"path": path, "message": f"invalid regular expression: {err}"}


def _graph_errors(strategy: StrategySpec) -> Iterable[SpecError]:
    """States the start cannot reach, and states from which no path leads to END."""
    targets = {name: [t.to for t in state.next if t.to in strategy.states or t.to == END_STATE]
               for name, state in strategy.states.items()}
    reached, pending = {strategy.start}, [strategy.start]
    while pending:
        for target in targets[pending.pop()]:
            if target != END_STATE and target not in reached:
                reached.add(target)
                pending.append(target)
    ends = {name for name, to in targets.items() if END_STATE in to}
    changed = True
    while changed:
        changed = False
        for name, to in targets.items():
            if name not in ends and any(target in ends for target in to):
                ends.add(name)
                changed = True
    for name in strategy.states:
        if name not in reached:
            yield {"path": f"strategy.states.{name}", "message": f"state '{name}' cannot be reached from the start "
                                                                 f"'{strategy.start}'"}
        elif name not in ends:
            yield {"path": f"strategy.states.{name}", "message": f"no way leads from state '{name}' to {END_STATE}"}
