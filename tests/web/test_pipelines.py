"""Pipeline specs and prompt modules over the API: validation names every error's path; modules are per user."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_session, send_and_wait

ALICE, BOB = {"X-User-Id": "alice"}, {"X-User-Id": "bob"}


def pipeline(steps: list[dict[str, Any]], output: str | None = "out", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"steps": steps}
    if output is not None:
        body["output"] = output
    return {"name": "p", "type": "pipeline", "pipeline": body, **extra}


async def errors_of(client: httpx.AsyncClient, spec: dict[str, Any], headers: dict[str, str] | None = None) -> list:
    response = await client.post("/api/v1/workflows/validate", json=spec, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["errors"]  # type: ignore[no-any-return]


class TestValidation:
    async def test_a_valid_diamond_is_accepted_and_stored(self, client: httpx.AsyncClient) -> None:
        spec = pipeline([{"id": "a", "module": "planner"}, {"id": "b", "module": "scrutinizer", "inputs": ["a"]},
                         {"id": "c", "module": "code_planner", "inputs": ["a"]},
                         {"id": "out", "module": "enhancer", "inputs": ["b", "c"]}])
        assert await errors_of(client, spec) == []
        created = await client.post("/api/v1/workflows", json=spec)
        assert created.status_code == 201 and created.json()["type"] == "pipeline"

    async def test_every_error_is_reported_with_its_path(self, client: httpx.AsyncClient) -> None:
        spec = pipeline([
            {"id": "a", "module": "planner", "inputs": ["task", "c"]},
            {"id": "b", "module": "nope", "inputs": ["a"]},
            {"id": "c", "agent": "ghost", "inputs": ["b", "missing"], "model": "huge"},
            {"id": "a", "module": "planner"},
            {"id": "lonely", "module": "planner"},
            {"id": "out", "module": "enhancer", "inputs": ["c"]}])
        errors = {(e["path"], e["message"]) for e in await errors_of(client, spec)}
        assert errors == {
            ("pipeline.steps[1].module",
             "unknown module 'nope'; known: code_planner, debugger, enhancer, planner, scrutinizer"),
            ("pipeline.steps[2].agent", "unknown agent 'ghost'"),
            ("pipeline.steps[2].model", "unknown model 'huge'"),
            ("pipeline.steps[3].id", "duplicate step id 'a'"),
            ("pipeline.steps[2].inputs[1]", "unknown step 'missing'"),
            ("pipeline.steps[0].inputs", "cycle: a -> b -> c -> a"),
            ("pipeline.steps[4]", "nothing leads from step 'lonely' to the output 'out': no step uses its output"),
        }

    async def test_a_missing_or_unknown_output_is_an_error(self, client: httpx.AsyncClient) -> None:
        steps = [{"id": "a", "module": "planner"}]
        assert await errors_of(client, pipeline(steps, output=None)) == [
            {"path": "pipeline.output", "message": "a pipeline needs an output: the step whose text is the reply"}]
        assert await errors_of(client, pipeline(steps, output="zzz")) == [
            {"path": "pipeline.output", "message": "unknown step 'zzz'"}]

    async def test_an_invalid_pipeline_is_422_and_stores_nothing(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/v1/sessions", json={"workflow": pipeline([
            {"id": "a", "module": "planner", "inputs": ["a"]}], output="a")})
        assert response.status_code == 422
        body = response.json()["error"]
        assert body["param"] == "workflow.pipeline.steps[0].inputs" and body["errors"] == [
            {"path": "pipeline.steps[0].inputs", "message": "cycle: a -> a"}]
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    async def test_a_step_runs_an_assistant_not_a_user_proxy(self, client: httpx.AsyncClient) -> None:
        spec = pipeline([{"id": "out", "agent": "proxy"}], agents=[{"name": "proxy", "kind": "userproxy"}])
        assert await errors_of(client, spec) == [
            {"path": "pipeline.steps[0].agent", "message": "'proxy' is a userproxy; a step runs an assistant"}]


class TestModules:
    async def test_crud(self, client: httpx.AsyncClient) -> None:
        created = await client.post("/api/v1/modules", json={"name": "critic", "system_message": "Be harsh."})
        assert created.status_code == 201, created.text
        module = created.json()
        assert module["object"] == "module" and module["id"].startswith("mod_") and module["model"] is None
        listed = (await client.get("/api/v1/modules")).json()
        assert [m["id"] for m in listed["data"]] == [module["id"]]
        replaced = await client.put(f"/api/v1/modules/{module['id']}",
                                    json={"name": "critic", "system_message": "Be fair.", "model": "default"})
        assert replaced.json()["system_message"] == "Be fair." and replaced.json()["model"] == "default"
        assert (await client.delete(f"/api/v1/modules/{module['id']}")).status_code == 204
        assert (await client.get(f"/api/v1/modules/{module['id']}")).status_code == 404

    async def test_a_second_module_of_the_same_name_is_409(self, client: httpx.AsyncClient) -> None:
        body = {"name": "critic", "system_message": "Be harsh."}
        assert (await client.post("/api/v1/modules", json=body)).status_code == 201
        response = await client.post("/api/v1/modules", json=body)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "module_exists"

    async def test_modules_are_isolated_per_user(self, client: httpx.AsyncClient) -> None:
        module = (await client.post("/api/v1/modules", json={"name": "critic", "system_message": "x"},
                                    headers=ALICE)).json()
        assert (await client.get(f"/api/v1/modules/{module['id']}", headers=BOB)).status_code == 404
        assert (await client.delete(f"/api/v1/modules/{module['id']}", headers=BOB)).status_code == 404
        assert (await client.get("/api/v1/modules", headers=BOB)).json()["data"] == []
        spec = pipeline([{"id": "out", "module": "critic"}])
        assert await errors_of(client, spec, headers=ALICE) == []
        assert [e["path"] for e in await errors_of(client, spec, headers=BOB)] == ["pipeline.steps[0].module"]

    async def test_a_library_module_runs_and_the_gallery_item_carries_it(self, client: httpx.AsyncClient) -> None:
        await client.post("/api/v1/modules", json={"name": "critic", "system_message": "You review plans."})
        session = await create_session(client, pipeline([{"id": "plan", "module": "planner"},
                                                          {"id": "out", "module": "critic", "inputs": ["plan"]}]))
        posted = await send_and_wait(client, session["id"], "Plan a picnic")
        assert posted["run"]["status"] == "completed", posted["run"]
        assert [s["id"] for s in posted["run"]["steps"]] == ["plan", "out"]
        assert {s["status"] for s in posted["run"]["steps"]} == {"completed"}
        item = (await client.post(f"/api/v1/sessions/{session['id']}/publish", json={"tags": ["p"]})).json()
        assert item["session"]["modules"] == {
            "critic": {"system_message": "You review plans.", "description": None, "model": None}}
