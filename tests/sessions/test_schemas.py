"""One shape for a message: what the read path (and its cache) serves is `MessageOut`'s JSON of the same row."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
from autobots.db.repositories import PageQuery
from autobots.db.tables import Message, new_id
from autobots.sessions import service as session_service
from autobots.sessions.message_cache import message_cache
from autobots.sessions.repository import MessageRepository
from autobots.sessions.schemas import MessageOut, message_json_of, message_out
from fastapi import FastAPI

ON_POSTGRES = "postgresql" in os.environ.get("AUTOBOTS_DATABASE_URL", "")
EVERYTHING = PageQuery(limit=100, order="asc")
# (run_id, role, content, meta): metadata or none (stored as NULL or JSON null), unicode, None fields.
VARIANTS: list[tuple[str | None, str, str, dict[str, Any] | None]] = [
    (None, "user", "What is 12*(3+4)?", None),
    ("run_1", "assistant", "The result is: 84", {}),
    ("run_2", "assistant", "Grüße, 世界 🤖 — \"quoted\" \\ back\nslash\ttab \u2028 </script>",
     {"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}, "cost": 0.0125,
      "summary": None, "stop_reason": "Text 'TERMINATE' mentioned", "ok": True,
      "messages": [{"source": "coder", "type": "TextMessage", "content": "ünïcödé ✓", "usage": None}],
      "Schlüssel": ["ß", 1, 2.5, False, None, {"nested": {"deeper": []}}]}),
    (None, "user", "", {"only": "metadata"}),
]


def model_json(row: Message) -> dict[str, Any]:
    """The message as the model renders it: validated against `MessageOut`, then dumped as JSON."""
    return json.loads(MessageOut.model_validate(message_out(row)).model_dump_json())  # type: ignore[no-any-return]


def assert_same_shape(rendered: str, row: Message) -> None:
    served = json.loads(rendered)
    assert served == model_json(row)
    assert list(served) == list(MessageOut.model_fields)  # the same fields, in the model's order


async def fill(app: FastAPI, session_id: str, user_id: str) -> None:
    async with app.state.services.db.session() as db:
        for run_id, role, content, meta in VARIANTS:
            db.add(Message(id=new_id("msg"), session_id=session_id, user_id=user_id, run_id=run_id, role=role,
                           content=content, meta=meta))


async def stored_rows(app: FastAPI, session_id: str) -> list[Message]:
    async with app.state.services.db.read_session() as read:
        return (await MessageRepository(read).list_for_session(session_id, EVERYTHING)).rows


class TestMessageRendering:
    @pytest.mark.parametrize(("run_id", "role", "content", "meta"), VARIANTS)
    def test_rendering_a_row_equals_the_models_json(self, run_id: str | None, role: str, content: str,
                                                    meta: dict[str, Any] | None) -> None:
        row = Message(pk=1, id="msg_1", session_id="ses_1", user_id="usr_1", run_id=run_id, role=role,
                      content=content, meta=meta, created_at=1_700_000_000)
        assert_same_shape(message_json_of(row), row)

    async def test_the_read_path_serves_the_models_json_of_stored_rows(self, client: httpx.AsyncClient,
                                                                       app: FastAPI) -> None:
        """The read path renders the raw columns, metadata as stored; what it serves and caches is the model's."""
        session = (await client.post("/api/v1/sessions", json={"name": "shapes"})).json()
        await fill(app, session["id"], session["user_id"])
        rows = await stored_rows(app, session["id"])
        assert len(rows) == len(VARIANTS)
        page = await session_service.owned_messages_json(app.state.services.db, user_id=session["user_id"],
                                                         session_id=session["id"], page=EVERYTHING)
        assert [m.id for m in page.rows] == [row.id for row in rows]
        for rendered, row in zip(page.rows, rows, strict=True):
            assert_same_shape(rendered.json, row)
        listed = (await client.get(f"/api/v1/sessions/{session['id']}/messages", params={"order": "asc"})).json()
        assert listed["data"] == [model_json(row) for row in rows]

    @pytest.mark.skipif(ON_POSTGRES, reason="the cache is only on for SQLite")
    async def test_the_cache_holds_the_models_json(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        session = (await client.post("/api/v1/sessions", json={"name": "shapes"})).json()
        await fill(app, session["id"], session["user_id"])
        await client.get(f"/api/v1/sessions/{session['id']}/messages")
        cached = message_cache.get(session["id"])
        assert cached is not None
        for entry, row in zip(cached, await stored_rows(app, session["id"]), strict=True):
            assert_same_shape(entry.json, row)
