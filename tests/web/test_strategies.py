"""Strategy specs over the API: validation names every error's path; templates expand; the scripted model
follows the formats states ask for, so the templates run offline."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.api import create_session, send_and_wait

AGENTS = [{"name": "planner"}, {"name": "reviewer"}, {"name": "executor"}]


def strategy(body: dict[str, Any], agents: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": "s", "type": "strategy", "agents": AGENTS if agents is None else agents, "strategy": body}


async def errors_of(client: httpx.AsyncClient, spec: dict[str, Any]) -> set[tuple[str, str]]:
    response = await client.post("/api/v1/workflows/validate", json=spec)
    assert response.status_code == 200, response.text
    return {(e["path"], e["message"]) for e in response.json()["errors"]}


class TestValidation:
    async def test_every_error_is_reported_with_its_path(self, client: httpx.AsyncClient) -> None:
        spec = strategy({"start": "planner", "states": {
            "planner": {"next": [{"otherwise": True, "to": "reviewr"}]},
            "reviewer": {"expect": {"format": "json", "schema": {"type": 12}},
                         "next": [{"when": {"regex": "(unclosed"}, "to": "END"},
                                  {"when": {"counter": "rejects", "at_least": 2}, "to": "planner"}]},
            "island": {"agent": "executor", "next": [{"otherwise": True, "to": "island"}]},
            "stuck": {"agent": "ghost", "next": [{"otherwise": True, "to": "stuck"}]}}})
        errors = await errors_of(client, spec)
        assert errors == {
            ("strategy.states.planner.next[0].to", "unknown state 'reviewr' (states: island, planner, reviewer, "
                                                   "stuck, or END)"),
            ("strategy.states.reviewer.expect.schema",
             "invalid JSON Schema at type: 12 is not valid under any of the given schemas"),
            ("strategy.states.reviewer.next[0].when.regex",
             "invalid regular expression: missing ), unterminated subpattern at position 0"),
            ("strategy.states.reviewer.next[1].when.counter", "unknown counter 'rejects'"),
            ("strategy.states.stuck.agent", "unknown agent 'ghost'"),
            ("strategy.states.reviewer", "state 'reviewer' cannot be reached from the start 'planner'"),
            ("strategy.states.island", "state 'island' cannot be reached from the start 'planner'"),
            ("strategy.states.stuck", "state 'stuck' cannot be reached from the start 'planner'"),
            ("strategy.states.planner", "no way leads from state 'planner' to END"),
        }

    async def test_a_state_with_no_way_to_end_is_named(self, client: httpx.AsyncClient) -> None:
        spec = strategy({"start": "planner", "states": {
            "planner": {"next": [{"when": {"contains": "done"}, "to": "END"}, {"otherwise": True, "to": "loop"}]},
            "loop": {"agent": "reviewer", "next": [{"otherwise": True, "to": "loop"}]}}})
        assert await errors_of(client, spec) == {("strategy.states.loop", "no way leads from state 'loop' to END")}

    async def test_malformed_conditions_are_422_with_their_path(self, client: httpx.AsyncClient) -> None:
        spec = strategy({"start": "planner", "states": {"planner": {"next": [
            {"when": {"json": "/verdict"}, "to": "END"}, {"to": "END"}]}}})
        response = await client.post("/api/v1/sessions", json={"workflow": spec})
        assert response.status_code == 422
        paths = [e["path"] for e in response.json()["error"]["errors"]]
        assert paths == ["strategy.states.planner.next[0].when", "strategy.states.planner.next[1]"]

    async def test_an_unknown_template_is_an_error(self, client: httpx.AsyncClient) -> None:
        errors = await errors_of(client, strategy({"template": "chaos_monkey"}))
        assert errors == {("strategy", "Value error, unknown template 'chaos_monkey'; templates: coin_poet, "
                                       "planner_reviewer_executor")}


class TestTemplates:
    async def test_planner_reviewer_executor_runs_offline(self, client: httpx.AsyncClient) -> None:
        spec = strategy({"template": "planner_reviewer_executor", "max_rejects": 2})
        created = await client.post("/api/v1/workflows", json=spec)
        assert created.status_code == 201, created.text
        stored = created.json()["spec"]["strategy"]
        assert stored["counters"]["rejects"]["when"] == {"json": "/verdict", "equals": "REJECT"}
        assert stored["states"]["reviewer"]["next"][0]["when"] == {"counter": "rejects", "at_least": 2}
        session = await create_session(client, spec)
        posted = await send_and_wait(client, session["id"], "Plan a picnic")
        assert posted["run"]["status"] == "completed", posted["run"]
        assert posted["reply"]["metadata"]["strategy"]["path"] == ["planner", "reviewer", "executor"]

    async def test_coin_poet_flips_a_coin_then_writes(self, client: httpx.AsyncClient) -> None:
        spec = strategy({"template": "coin_poet"}, agents=[{"name": "coin"}, {"name": "poet"}])
        session = await create_session(client, spec)
        posted = await send_and_wait(client, session["id"], "Write about the sea")
        assert posted["run"]["status"] == "completed", posted["run"]
        path = posted["reply"]["metadata"]["strategy"]["path"]
        assert path[0] == "coin" and path[1] in ("poem", "limerick") and len(path) == 2
        events = (await client.get(f"/api/v1/runs/{posted['run']['id']}/events")).json()
        flip = next(e["data"]["content"] for e in events if e["type"] == "message")
        assert flip in ("heads", "tails") and (path[1] == "poem") == (flip == "heads")
