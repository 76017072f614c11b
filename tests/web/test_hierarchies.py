"""Hierarchy specs over the API: the tree's shape and privileges that only narrow are validated with paths; a
scripted tree runs offline and its published session shows the tree."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_session, send_and_wait


def company(**members: Any) -> dict[str, Any]:
    tree = {
        "board": {"children": ["research", "engineering"],
                  "privileges": {"models": ["default"], "max_tokens": 200_000,
                                 "spawn": {"templates": ["worker"], "max_children": 2}}},
        "research": {"privileges": {"max_tokens": 50_000}},
        "engineering": {"privileges": {"max_tokens": 80_000, "spawn": {"templates": ["worker"], "max_children": 1}}},
        **members}
    return {"name": "company", "type": "hierarchy",
            "agents": [{"name": "board", "system_message": "You chair the board."},
                       {"name": "research", "system_message": "You lead research."},
                       {"name": "engineering", "system_message": "You lead engineering."}],
            "hierarchy": {"root": "board", "members": tree,
                          "templates": {"worker": {"system_message": "You do one job well."}}}}


async def errors_of(client: httpx.AsyncClient, spec: dict[str, Any]) -> set[tuple[str, str]]:
    response = await client.post("/api/v1/workflows/validate", json=spec)
    assert response.status_code == 200, response.text
    return {(e["path"], e["message"]) for e in response.json()["errors"]}


class TestValidation:
    async def test_a_child_with_code_execution_under_a_parent_without_is_422_naming_both(self, client) -> None:
        spec = company(engineering={"privileges": {"code_execution": True, "max_tokens": 80_000}})
        response = await client.post("/api/v1/sessions", json={"workflow": spec})
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["param"] == "workflow.hierarchy.members.engineering.privileges.code_execution"
        assert error["errors"] == [{
            "path": "hierarchy.members.engineering.privileges.code_execution",
            "message": "code_execution is granted, but the parent does not have it: a child's privileges must be a "
                       "subset of its parent's (hierarchy.members.board.privileges.code_execution)"}]

    async def test_the_tree_shape_is_checked(self, client) -> None:
        spec = company(research={"children": ["board", "ghost"], "privileges": {"max_tokens": 10}},
                       engineering={"children": ["research"], "privileges": {"max_tokens": 10}})
        errors = await errors_of(client, spec)
        assert ("hierarchy.members.research.children[0]", "'board' is the root; the root has no parent") in errors
        assert ("hierarchy.members.research.children[1]", "'ghost' is not one of the members") in errors
        assert ("hierarchy.members.engineering.children[0]",
                "'research' already reports to 'board': a member is placed once") in errors

    async def test_depth_past_the_limit_and_unplaced_agents_are_errors(self, client) -> None:
        spec = company(research={"children": ["engineering"], "privileges": {"max_tokens": 10}})
        spec["hierarchy"]["members"]["board"]["children"] = ["research"]
        spec["hierarchy"]["limits"] = {"max_depth": 2}
        spec["agents"].append({"name": "intern"})
        errors = await errors_of(client, spec)
        assert errors == {
            ("hierarchy.members.engineering", "'engineering' is at depth 3, deeper than limits.max_depth 2"),
            ("agents[3]", "agent 'intern' is not placed in the hierarchy"),
            ("hierarchy.members.engineering.privileges.max_tokens",
             "max_tokens must be at most the parent's 10: a child's privileges must be a subset of its parent's "
             "(hierarchy.members.research.privileges.max_tokens)"),
            ("hierarchy.members.engineering.privileges.spawn",
             "spawn is granted, but the parent may not spawn: a child's privileges must be a subset of its parent's "
             "(hierarchy.members.research.privileges.spawn)")}

    async def test_a_spawn_privilege_wider_than_the_parents_is_an_error(self, client) -> None:
        spec = company(engineering={"privileges": {"max_tokens": 80_000,
                                                   "spawn": {"templates": ["worker", "boss"], "max_children": 5}}})
        errors = await errors_of(client, spec)
        assert ("hierarchy.members.engineering.privileges.spawn.templates", "unknown template 'boss'") in errors
        assert any(path == "hierarchy.members.engineering.privileges.spawn.max_children" for path, _ in errors)


async def test_a_scripted_tree_runs_offline_and_the_gallery_shows_it(client: httpx.AsyncClient) -> None:
    session = await create_session(client, company())
    posted = await send_and_wait(client, session["id"], "Build a weather app")
    assert posted["run"]["status"] == "completed", posted["run"]
    tree = posted["reply"]["metadata"]["hierarchy"]["tree"]
    assert [child["path"] for child in tree["children"]] == ["board/research", "board/engineering"]
    events = (await client.get(f"/api/v1/runs/{posted['run']['id']}/events")).json()
    kinds = {e["type"] for e in events}
    assert {"hierarchy.delegate", "hierarchy.result", "hierarchy.spawn", "hierarchy.terminate"} <= kinds
    item = (await client.post(f"/api/v1/sessions/{session['id']}/publish", json={"tags": ["tree"]})).json()
    published = item["messages"][-1]["metadata"]["hierarchy"]["tree"]
    assert published == tree
