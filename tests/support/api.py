"""Requests to the in-process app (the `client` fixture: httpx over ASGI) and its API keys."""

from __future__ import annotations

from typing import Any

import httpx
from autobots.users import service as user_service
from fastapi import FastAPI

from tests.support.specs import autonomous_spec


async def create_session(client: httpx.AsyncClient, spec: dict[str, Any] | None = None,
                         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A new session on `spec` (default: `autonomous_spec()`), asserting the 201."""
    response = await client.post("/api/v1/sessions", json={"workflow": spec or autonomous_spec()}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def send_and_wait(client: httpx.AsyncClient, session_id: str, content: str,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Send a message with `?wait=true`, asserting the 200; the body holds the message, run and reply."""
    response = await client.post(f"/api/v1/sessions/{session_id}/messages?wait=true", json={"content": content},
                                 headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def make_key(app: FastAPI, name: str) -> str:
    """A new API key for the user `name` (created if needed) of a started app."""
    async with app.state.services.db.session() as session:
        user = await user_service.get_or_create(session, name=name)
        return await user_service.create_api_key(session, user=user)
