"""Shared fixtures: a fresh database per test (SQLite file, or PostgreSQL when AUTOBOTS_DATABASE_URL names
one), the app with its lifespan, an in-process httpx client, and the fake OpenAI server's fixtures.

Helpers live in `tests/support/` (spec factories in `specs.py`, requests in `api.py`); conftest files hold
fixtures only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from autobots.config import Settings

from tests.support.database import POSTGRES_URL, reset_postgres

pytest_plugins = ["tests.support.fixtures"]


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
