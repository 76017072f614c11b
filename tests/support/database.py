"""The test database: SQLite by default, or the PostgreSQL database named by AUTOBOTS_DATABASE_URL.

The tests own that PostgreSQL database and empty it; servers that live the whole session get one of
their own beside it (`session_postgres_url`).
"""

from __future__ import annotations

import functools
import os

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


@functools.cache
def session_postgres_url() -> str:
    """A PostgreSQL database of its own for the servers that live the whole session.

    Other tests reset the configured database (drop and recreate its schema) while these servers still run; on
    a shared database the servers would see those tests' runs as their own to schedule and execute.
    """
    from autobots.db.engine import sync_url
    from sqlalchemy import create_engine, make_url, text

    url = make_url(POSTGRES_URL)
    name = f"{url.database}_e2e"
    engine = create_engine(sync_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)
