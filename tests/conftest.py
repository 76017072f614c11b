"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when AUTOBOTS_DATABASE_URL names
one), the app with its lifespan, an in-process httpx client, and spec factories."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from autobots.config import Settings

from tests.support.fixtures import fake_openai, fake_openai_session, fake_openai_shared  # noqa: F401

POSTGRES_URL = os.environ.get("AUTOBOTS_DATABASE_URL", "")


def reset_postgres(url: str) -> None:
    """Empty the PostgreSQL database named by `url` (tests own it)."""
    from autobots.db.engine import sync_url
    from sqlalchemy import create_engine, text

    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    if POSTGRES_URL.startswith("postgresql"):
        reset_postgres(POSTGRES_URL)
        yield POSTGRES_URL
    else:
        yield f"sqlite:///{tmp_path / 'autobots.sqlite'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Loopback, local auth, the unsafe `local` sandbox (explicitly chosen), no warm pool, runs on the app's
    own event loop (worker processes are exercised by tests/runs and the end-to-end tests)."""
    return Settings(
        database_url=database_url, auth_mode="local", sandbox="local", sandbox_pool_size=0, run_workers=0,
        sandbox_workspace_root=str(tmp_path / "workspaces"), sandbox_default_timeout_s=10,
        run_max_seconds=60, max_body_bytes=256 * 1024,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    from autobots.web import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    # A loopback name: in local mode the server answers no other Host (DNS rebinding).
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as http:
        yield http


def autonomous_spec(**overrides: Any) -> dict[str, Any]:
    """A coder + executing user proxy on the scripted model."""
    spec: dict[str, Any] = {
        "name": "coder",
        "type": "autonomous",
        "models": {"default": {"provider": "scripted", "model": "scripted",
                               "price": {"prompt_per_1k": 0.001, "completion_per_1k": 0.002}}},
        "agents": [
            {"name": "coder", "kind": "assistant", "system_message": "You are a python coder."},
            {"name": "user_proxy", "kind": "userproxy", "code_execution": {"timeout_s": 10}},
        ],
        "sender": "user_proxy",
        "receiver": "coder",
    }
    spec.update(overrides)
    return spec


def sequential_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "research-then-write",
        "type": "sequential",
        "models": {"default": {"provider": "scripted", "model": "scripted"}},
        "agents": [
            {"name": "researcher", "system_message": "You are a researcher."},
            {"name": "writer", "system_message": "You are a writer."},
        ],
        "steps": ["researcher", "writer"],
        "summary_method": "last",
    }
    spec.update(overrides)
    return spec


def groupchat_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "team",
        "type": "groupchat",
        "models": {"default": {"provider": "scripted", "model": "scripted"}},
        "agents": [
            {"name": "planner", "system_message": "You plan.", "description": "Plans the work."},
            {"name": "coder", "system_message": "You write python code.", "description": "Writes python code."},
            {"name": "executor", "kind": "userproxy", "code_execution": {},
             "description": "Runs code and reports the output."},
            {"name": "critic", "system_message": "You review the work.", "description": "Reviews the result."},
        ],
        "groupchat": {"agents": ["planner", "coder", "executor", "critic"], "speaker_selection": "auto"},
    }
    spec.update(overrides)
    return spec


async def create_session(client: httpx.AsyncClient, spec: dict[str, Any] | None = None,
                         headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.post("/api/v1/sessions", json={"workflow": spec or autonomous_spec()}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def send_and_wait(client: httpx.AsyncClient, session_id: str, content: str,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await client.post(f"/api/v1/sessions/{session_id}/messages?wait=true", json={"content": content},
                                 headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
