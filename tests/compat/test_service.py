"""The seed-era operations behind the routes: what a session listing costs and shows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from tests.support.seed import autonomous_flow

USER = {"user_id": "u1"}


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed llm configs without a key fall back to the server default (scripted) only when no key is set."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@contextmanager
def statements_of(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements that reads (GET requests) send while inside."""
    engine = app.state.services.db.read_engine.sync_engine
    seen: list[str] = []

    def record(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def create_sessions(client: httpx.AsyncClient, count: int) -> None:
    for n in range(count):
        response = await client.post("/api/sessions", json={**USER, "session": {
            **USER, "session_id": f"s{n}", "flow_config": autonomous_flow(name=f"flow {n}")}})
        assert response.status_code == 200, response.text


class TestListSessions:
    async def test_one_query_for_the_workflows_of_every_session(self, client: httpx.AsyncClient,
                                                                app: FastAPI) -> None:
        await create_sessions(client, 4)
        with statements_of(app) as statements:
            response = await client.get("/api/sessions", params=USER)
        assert response.status_code == 200
        listed = response.json()["data"]
        assert [(row["external_id"], row["flow_config"]["name"]) for row in listed] == [
            ("s3", "flow 3"), ("s2", "flow 2"), ("s1", "flow 1"), ("s0", "flow 0")]
        assert len([sql for sql in statements if "FROM workflow" in sql]) == 1, statements

    async def test_no_workflows_no_query(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        await client.post("/api/sessions", json={**USER, "session": USER})
        with statements_of(app) as statements:
            listed = (await client.get("/api/sessions", params=USER)).json()["data"]
        assert [row["flow_config"] for row in listed] == [None]
        assert not [sql for sql in statements if "FROM workflow" in sql], statements

    async def test_a_deleted_workflow_is_no_flow_config(self, client: httpx.AsyncClient) -> None:
        await create_sessions(client, 2)
        headers = {"X-User-Id": USER["user_id"]}
        sessions = (await client.get("/api/v1/sessions", headers=headers)).json()["data"]
        deleted = await client.delete(f"/api/v1/workflows/{sessions[0]['workflow_id']}", headers=headers)
        assert deleted.status_code == 204
        listed = (await client.get("/api/sessions", params=USER)).json()["data"]
        assert [row["flow_config"] and row["flow_config"]["name"] for row in listed] == [None, "flow 0"]
