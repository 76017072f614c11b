"""Planner specs over the API: validation, and a scripted planner run offline from plan to learned statistics."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_session, send_and_wait

SCRIPTED = {"provider": "scripted", "model": "scripted"}


def planner_spec(**overrides: Any) -> dict[str, Any]:
    return {"name": "planned", "type": "planner", "models": {"default": SCRIPTED, "small": SCRIPTED},
            "planner": {"model": "default"}, "workers": {"pool": ["small", "default"], "verifier": "small"},
            **overrides}


async def test_unknown_models_are_named(client: httpx.AsyncClient) -> None:
    spec = planner_spec(planner={"model": "huge"}, workers={"pool": ["small", "ghost"], "verifier": "nobody"})
    response = await client.post("/api/v1/workflows/validate", json=spec)
    assert {(e["path"], e["message"]) for e in response.json()["errors"]} == {
        ("planner.model", "unknown model 'huge'"), ("workers.pool[1]", "unknown model 'ghost'"),
        ("workers.verifier", "unknown model 'nobody'")}


async def test_a_planner_needs_its_workers(client: httpx.AsyncClient) -> None:
    spec = planner_spec()
    del spec["workers"]
    response = await client.post("/api/v1/workflows", json=spec)
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "workers"


async def test_a_scripted_planner_plans_routes_and_learns_offline(client: httpx.AsyncClient) -> None:
    session = await create_session(client, planner_spec(router={"policy": "cheapest"}))
    posted = await send_and_wait(client, session["id"], "Compute 12*(3+4)")
    assert posted["run"]["status"] == "completed", posted["run"]
    metadata = posted["reply"]["metadata"]
    assert [s["id"] for s in metadata["plan"]] == ["gather", "left", "right", "combine"]
    assert [s["id"] for s in metadata["steps"]] == ["gather", "left", "right", "combine", "answer"]
    assert [o["success"] for o in metadata["outcomes"]] == [1.0, 1.0, 1.0, 1.0]
    stats = (await client.get("/api/v1/router", params={"workflow_id": session["workflow_id"]})).json()["data"]
    assert sum(row["pulls"] for row in stats if row["size"] is None) == 4
    assert (await client.get("/api/v1/router", params={"workflow_id": session["workflow_id"]},
                             headers={"X-User-Id": "someone-else"})).status_code == 404
