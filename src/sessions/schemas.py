"""The public shapes of sessions and messages: the one definition of each, and the functions that render rows
in it.

A message is rendered two ways, both here: `message_out` (a JSON-ready dict, for responses that hold a message
among other things) and `message_json` (JSON text, for the hot read path and its cache, which inserts the stored
metadata JSON as it is rather than parsing and re-encoding it). Both follow `MessageOut` field for field;
tests/sessions/test_schemas.py holds them to it.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from autobots.db.tables import ChatSession, Message
from pydantic import BaseModel


class SessionOut(BaseModel):
    id: str
    object: Literal["session"] = "session"
    user_id: str
    name: str | None
    workflow_id: str | None
    created_at: int
    updated_at: int


class MessageOut(BaseModel):
    id: str
    object: Literal["message"] = "message"
    session_id: str
    run_id: str | None
    role: Literal["user", "assistant"]
    content: str
    metadata: dict[str, Any]
    created_at: int


def session_out(row: ChatSession) -> dict[str, Any]:
    return {"id": row.id, "object": "session", "user_id": row.user_id, "name": row.name,
            "workflow_id": row.workflow_id, "created_at": row.created_at, "updated_at": row.updated_at}


def message_out(row: Message) -> dict[str, Any]:
    return {"id": row.id, "object": "message", "session_id": row.session_id, "run_id": row.run_id,
            "role": row.role, "content": row.content, "metadata": row.meta or {}, "created_at": row.created_at}


def message_json(id: str, session_id: str, run_id: str | None, role: str, content: str, metadata: str | None,
                 created_at: int) -> str:
    """A message as JSON text, from its columns with `metadata` as its stored JSON text (None or `null`: `{}`)."""
    dumps = json.dumps
    inserted = metadata if metadata and metadata != "null" else "{}"
    return (f'{{"id":{dumps(id)},"object":"message","session_id":{dumps(session_id)},"run_id":{dumps(run_id)},'
            f'"role":{dumps(role)},"content":{dumps(content)},"metadata":{inserted},"created_at":{int(created_at)}}}')


def message_json_of(row: Message) -> str:
    """`message_json` of a loaded row."""
    return message_json(row.id, row.session_id, row.run_id, row.role, row.content,
                        json.dumps(row.meta) if row.meta else None, row.created_at)
