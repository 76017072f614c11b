"""What makes a hierarchy spec invalid: the tree's shape, and privileges that widen (API.md "Hierarchies")."""

from __future__ import annotations

from collections.abc import Iterable

from autobots.workflows.schemas import HierarchySpec, PrivilegesSpec, WorkflowSpec

SpecError = dict[str, str]


def narrowing_problems(child: PrivilegesSpec, parent: PrivilegesSpec, *, parent_models: set[str] | None
                       ) -> list[tuple[str, str]]:
    """How `child` would hold more than `parent`: (field, what is wrong); empty when it is a subset.

    `parent_models` is the parent's effective model list (None: every model of the spec).
    """
    problems: list[tuple[str, str]] = []
    for flag in ("code_execution", "network"):
        if getattr(child, flag) and not getattr(parent, flag):
            problems.append((flag, f"{flag} is granted, but the parent does not have it"))
    if child.models is not None and parent_models is not None:
        extra = sorted(set(child.models) - parent_models)
        if extra:
            problems.append(("models", f"models {', '.join(extra)} are not among the parent's"))
    if child.tools is not None and parent.tools is not None:
        extra = sorted(set(child.tools) - set(parent.tools))
        if extra:
            problems.append(("tools", f"tools {', '.join(extra)} are not among the parent's"))
    if parent.max_tokens is not None and (child.max_tokens is None or child.max_tokens > parent.max_tokens):
        problems.append(("max_tokens", f"max_tokens must be at most the parent's {parent.max_tokens}"))
    if child.spawn is not None and (child.spawn.templates or child.spawn.max_children):
        if parent.spawn is None:
            problems.append(("spawn", "spawn is granted, but the parent may not spawn"))
        else:
            extra = sorted(set(child.spawn.templates) - set(parent.spawn.templates))
            if extra:
                problems.append(("spawn.templates", f"templates {', '.join(extra)} are not among the parent's"))
            if child.spawn.max_children > parent.spawn.max_children:
                problems.append(("spawn.max_children",
                                 f"max_children must be at most the parent's {parent.spawn.max_children}"))
    return problems


def effective_models(hierarchy: HierarchySpec, member: str, parents: dict[str, str]) -> set[str] | None:
    """The models `member` may use: its own list, narrowed by every ancestor's (None: no list anywhere)."""
    allowed: set[str] | None = None
    node: str | None = member
    seen: set[str] = set()
    while node is not None and node not in seen:
        seen.add(node)
        models = hierarchy.members[node].privileges.models if node in hierarchy.members else None
        if models is not None:
            allowed = set(models) if allowed is None else allowed & set(models)
        node = parents.get(node)
    return allowed


def parents_of(hierarchy: HierarchySpec) -> dict[str, str]:
    parents: dict[str, str] = {}
    for name, member in hierarchy.members.items():
        for child in member.children:
            parents.setdefault(child, name)
    return parents


def hierarchy_errors(spec: WorkflowSpec) -> Iterable[SpecError]:
    hierarchy = spec.hierarchy
    if hierarchy is None:
        yield {"path": "hierarchy", "message": "a hierarchy workflow needs a hierarchy section"}
        return
    members = hierarchy.members
    group = spec.groupchat.name if spec.groupchat else None
    if hierarchy.root not in members:
        yield {"path": "hierarchy.root", "message": f"'{hierarchy.root}' is not one of the members"}
    for name in members:
        agent = spec.agent(name)
        if agent is None and name != group:
            yield {"path": f"hierarchy.members.{name}", "message": f"'{name}' is neither an agent nor the groupchat"}
        elif agent is not None and agent.kind != "assistant":
            yield {"path": f"hierarchy.members.{name}", "message": f"'{name}' is a {agent.kind}; members are "
                                                                  "assistants or the groupchat"}
    yield from _tree_errors(hierarchy)
    placed = set(members) | set(spec.groupchat.agents if spec.groupchat and group in members else [])
    for index, agent in enumerate(spec.agents):
        if agent.kind == "assistant" and agent.name not in placed:
            yield {"path": f"agents[{index}]", "message": f"agent '{agent.name}' is not placed in the hierarchy"}
    yield from _privilege_errors(spec, hierarchy)
    for name, template in hierarchy.templates.items():
        if template.model is not None and spec.models is not None and template.model not in spec.models:
            yield {"path": f"hierarchy.templates.{name}.model", "message": f"unknown model '{template.model}'"}


def _tree_errors(hierarchy: HierarchySpec) -> Iterable[SpecError]:
    members = hierarchy.members
    parent_of: dict[str, str] = {}
    for name, member in members.items():
        for index, child in enumerate(member.children):
            path = f"hierarchy.members.{name}.children[{index}]"
            if child not in members:
                yield {"path": path, "message": f"'{child}' is not one of the members"}
            elif child == hierarchy.root:
                yield {"path": path, "message": f"'{child}' is the root; the root has no parent"}
            elif child in parent_of:
                yield {"path": path, "message": f"'{child}' already reports to '{parent_of[child]}': "
                                                "a member is placed once"}
            else:
                parent_of[child] = name
    depth: dict[str, int] = {}
    for name in members:
        chain, node = [], name
        while node in parent_of and node not in chain:
            chain.append(node)
            node = parent_of[node]
        if node in chain:
            yield {"path": f"hierarchy.members.{name}.children",
                   "message": f"cycle: {' -> '.join([*reversed(chain[chain.index(node):]), node])}"}
            continue
        if node != hierarchy.root and name != hierarchy.root:
            yield {"path": f"hierarchy.members.{name}",
                   "message": f"'{name}' is not placed under the root '{hierarchy.root}'"}
            continue
        depth[name] = len(chain) + 1
        if depth[name] > hierarchy.limits.max_depth:
            yield {"path": f"hierarchy.members.{name}",
                   "message": f"'{name}' is at depth {depth[name]}, deeper than limits.max_depth "
                              f"{hierarchy.limits.max_depth}"}
    if len(members) > hierarchy.limits.max_agents:
        yield {"path": "hierarchy.members", "message": f"{len(members)} members exceed limits.max_agents "
                                                       f"{hierarchy.limits.max_agents}"}


def _privilege_errors(spec: WorkflowSpec, hierarchy: HierarchySpec) -> Iterable[SpecError]:
    parents = parents_of(hierarchy)
    for name, member in hierarchy.members.items():
        privileges = member.privileges
        for model in privileges.models or []:
            if spec.models is not None and model not in spec.models:
                yield {"path": f"hierarchy.members.{name}.privileges.models", "message": f"unknown model '{model}'"}
        if privileges.spawn is not None:
            for template in privileges.spawn.templates:
                if template not in hierarchy.templates:
                    yield {"path": f"hierarchy.members.{name}.privileges.spawn.templates",
                           "message": f"unknown template '{template}'"}
        agent = spec.agent(name)
        allowed = effective_models(hierarchy, name, parents)
        if agent is not None and allowed is not None and spec.model_for(agent) not in allowed:
            yield {"path": f"agents[{spec.agents.index(agent)}].model",
                   "message": f"'{name}' uses model '{spec.model_for(agent)}', which its privileges do not allow "
                              f"({', '.join(sorted(allowed)) or 'none'})"}
        parent = parents.get(name)
        if parent is None or parent not in hierarchy.members:
            continue
        parent_models = effective_models(hierarchy, parent, parents)
        for field_name, problem in narrowing_problems(privileges, hierarchy.members[parent].privileges,
                                                      parent_models=parent_models):
            yield {"path": f"hierarchy.members.{name}.privileges.{field_name}",
                   "message": f"{problem}: a child's privileges must be a subset of its parent's "
                              f"(hierarchy.members.{parent}.privileges.{field_name.split('.')[0]})"}
