"""What makes a pipeline spec invalid: every problem with its path (API.md "Pipelines")."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from autobots.workflows.modules import BUILTIN_MODULES
from autobots.workflows.schemas import TASK_INPUT, ModuleSpec, PipelineSpec, WorkflowSpec

SpecError = dict[str, str]


def resolve_module(name: str, spec: WorkflowSpec, library: Mapping[str, ModuleSpec]) -> ModuleSpec | None:
    """The module a step names: the spec's own, else the user's library, else a built-in one."""
    own = (spec.modules or {}).get(name)
    return own or library.get(name) or BUILTIN_MODULES.get(name)


def step_model(spec: WorkflowSpec, index: int, library: Mapping[str, ModuleSpec]) -> str:
    """The model a step runs with: its own, else its module's, else its agent's, else `default`."""
    step = spec.pipeline.steps[index]  # type: ignore[union-attr]
    if step.model:
        return step.model
    if step.module:
        module = resolve_module(step.module, spec, library)
        if module is not None and module.model:
            return module.model
    if step.agent:
        agent = spec.agent(step.agent)
        if agent is not None:
            return spec.model_for(agent)
    return "default"


def pipeline_errors(spec: WorkflowSpec, *, library: Mapping[str, ModuleSpec],
                    model_exists: Callable[[str], bool]) -> Iterable[SpecError]:
    pipeline = spec.pipeline
    if pipeline is None:
        yield {"path": "pipeline", "message": "a pipeline workflow needs a pipeline section"}
        return
    for name, module in (spec.modules or {}).items():
        if module.model and not model_exists(module.model):
            yield {"path": f"modules.{name}.model", "message": f"unknown model '{module.model}'"}
    index_of: dict[str, int] = {}
    for index, step in enumerate(pipeline.steps):
        path = f"pipeline.steps[{index}]"
        if step.id == TASK_INPUT:
            yield {"path": f"{path}.id", "message": f"'{TASK_INPUT}' names the user's message; choose another id"}
        elif step.id in index_of:
            yield {"path": f"{path}.id", "message": f"duplicate step id '{step.id}'"}
        index_of.setdefault(step.id, index)
        yield from _runner_errors(spec, index, library)
        model = step_model(spec, index, library)
        if (step.agent or step.module) and not model_exists(model):
            yield {"path": f"{path}.model", "message": f"unknown model '{model}'"}
    for index, step in enumerate(pipeline.steps):
        if not step.inputs:
            yield {"path": f"pipeline.steps[{index}].inputs",
                   "message": "a step needs at least one input: a step id, or 'task' for the user's message"}
        for k, source in enumerate(step.inputs):
            if source != TASK_INPUT and source not in index_of:
                yield {"path": f"pipeline.steps[{index}].inputs[{k}]", "message": f"unknown step '{source}'"}
    yield from _cycle_errors(pipeline, index_of)
    yield from _output_errors(pipeline, index_of)


def _runner_errors(spec: WorkflowSpec, index: int, library: Mapping[str, ModuleSpec]) -> Iterable[SpecError]:
    step = spec.pipeline.steps[index]  # type: ignore[union-attr]
    path = f"pipeline.steps[{index}]"
    if (step.agent is None) == (step.module is None):
        yield {"path": path, "message": "a step names exactly one of 'agent' or 'module'"}
        return
    if step.agent is not None:
        agent = spec.agent(step.agent)
        if agent is None:
            yield {"path": f"{path}.agent", "message": f"unknown agent '{step.agent}'"}
        elif agent.kind != "assistant":
            yield {"path": f"{path}.agent", "message": f"'{step.agent}' is a {agent.kind}; a step runs an assistant"}
    elif resolve_module(step.module or "", spec, library) is None:
        known = sorted({*(spec.modules or {}), *library, *BUILTIN_MODULES})
        yield {"path": f"{path}.module",
               "message": f"unknown module '{step.module}'; known: {', '.join(known)}"}


def _cycle_errors(pipeline: PipelineSpec, index_of: Mapping[str, int]) -> Iterable[SpecError]:
    """Each cycle once, named in the order its steps feed each other, at the inputs of its first step."""
    feeds: dict[str, list[str]] = {}
    for step in pipeline.steps:  # a duplicate id (reported apart) keeps its first step's inputs
        feeds.setdefault(step.id, [s for s in step.inputs if s in index_of])
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    reported: set[frozenset[str]] = set()
    for start in feeds:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, next_input = stack.pop()
            if next_input == 0:
                state[node] = 1
                path.append(node)
            if next_input < len(feeds[node]):
                stack.append((node, next_input + 1))
                source = feeds[node][next_input]
                if state.get(source) == 1:
                    cycle = path[path.index(source):]
                    if frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        flow = cycle[::-1]  # inputs point backwards: name the steps as their outputs flow
                        first = min(cycle, key=index_of.__getitem__)
                        flow = flow[flow.index(first):] + flow[:flow.index(first)]
                        yield {"path": f"pipeline.steps[{index_of[first]}].inputs",
                               "message": f"cycle: {' -> '.join([*flow, first])}"}
                elif not state.get(source):
                    stack.append((source, 0))
            else:
                state[node] = 2
                path.pop()


def _output_errors(pipeline: PipelineSpec, index_of: Mapping[str, int]) -> Iterable[SpecError]:
    if pipeline.output is None:
        yield {"path": "pipeline.output", "message": "a pipeline needs an output: the step whose text is the reply"}
        return
    if pipeline.output not in index_of:
        yield {"path": "pipeline.output", "message": f"unknown step '{pipeline.output}'"}
        return
    inputs: dict[str, list[str]] = {}
    for step in pipeline.steps:
        inputs.setdefault(step.id, step.inputs)
    leads_to_output, pending = {pipeline.output}, [pipeline.output]
    while pending:
        for source in inputs.get(pending.pop(), []):
            if source in index_of and source not in leads_to_output:
                leads_to_output.add(source)
                pending.append(source)
    for index, step in enumerate(pipeline.steps):
        if step.id not in leads_to_output and index_of.get(step.id) == index:
            yield {"path": f"pipeline.steps[{index}]",
                   "message": f"nothing leads from step '{step.id}' to the output '{pipeline.output}': "
                              "no step uses its output"}
