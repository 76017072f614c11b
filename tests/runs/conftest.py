"""Fixtures of the engine tests: a migrated database of the test's own, without an app around it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from autobots.db import Database, migrate_to_head


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """The test's database (a SQLite file in tmp_path, or the PostgreSQL one the suite is pointed at), migrated."""
    await asyncio.to_thread(migrate_to_head, database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
