"""Async engine and session factory; URL translation between sync (alembic) and async drivers."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> str:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend]).render_as_string(hide_password=False)


def async_url(url: str) -> str:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> str:
    return _with_driver(url, _SYNC_DRIVERS)


def ensure_sqlite_directory(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def redacted_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class SqliteWriteLock:
    """Serializes write transactions across this server's processes (API and run workers) on a lock file.

    SQLite's own busy handler makes a writer that finds the database locked by another process sleep
    (1, 2, 5 … 100 ms) and try again, so under many small transactions from several processes writers
    starve. An exclusive `flock` queues them in the kernel instead: a waiter wakes when the lock is
    released. Taken when a write transaction begins, released when its connection goes back to the pool.
    """

    def __init__(self, database_path: str) -> None:
        self._fd = os.open(f"{database_path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
        self._held = False

    async def acquire(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await asyncio.to_thread(fcntl.flock, self._fd, fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        os.close(self._fd)


class Database:
    """The process's engines and session factories.

    On SQLite a transaction that reads and then writes fails at once ("database is locked") when another
    connection committed in between, whatever the busy timeout. So units of work that may write begin with
    `BEGIN IMMEDIATE` (they queue for the write lock up front), and `read_session()` serves pure reads with a
    plain `BEGIN` on a second engine, so reads never wait for writers (WAL).
    """

    def __init__(self, url: str) -> None:
        ensure_sqlite_directory(url)
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        database = make_url(url).database
        self._write_lock = (SqliteWriteLock(str(Path(database).resolve()))
                            if self.is_sqlite and database and database != ":memory:" else None)
        self.engine = self._engine(url, begin="BEGIN IMMEDIATE", writer=True)
        self.read_engine = self._engine(url, begin="BEGIN", writer=False) if self.is_sqlite else self.engine
        self.sessionmaker = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self.read_sessionmaker = async_sessionmaker(self.read_engine, class_=AsyncSession, expire_on_commit=False)

    def _engine(self, url: str, *, begin: str, writer: bool) -> AsyncEngine:
        # Requests, run executors and the run journal each hold a connection only briefly (streams give
        # theirs back before streaming). SQLite takes one writer at a time anyway: its write engine has one
        # connection, so writers of this process queue cheaply in the pool instead of spinning in SQLite's
        # busy handler; the busy timeout still covers other processes (the CLI, a second server).
        if not self.is_sqlite:
            return create_async_engine(async_url(url), pool_size=10, max_overflow=30, pool_pre_ping=True)
        pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 300} if writer else {
            "pool_size": 20, "max_overflow": 30}
        engine = create_async_engine(async_url(url), connect_args={"timeout": 30}, **pool)

        def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            _sqlite_pragmas(dbapi_connection)
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)

        lock = self._write_lock if writer else None

        def on_begin(connection) -> None:  # type: ignore[no-untyped-def]
            if lock is not None:
                await_only(lock.acquire())  # we run in SQLAlchemy's greenlet: this awaits on the event loop
            connection.exec_driver_sql(begin)

        def on_checkin(_dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            if lock is not None:
                lock.release()

        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", on_begin)
        event.listen(engine.sync_engine.pool, "checkin", on_checkin)
        return engine

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that may write: commits on success, rolls back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (it never waits for writers on SQLite). Closing it (not a rollback, which
        would expire them) leaves the rows it loaded usable."""
        async with self.read_sessionmaker() as session:
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        if self._write_lock is not None:
            self._write_lock.close()
            self._write_lock = None


def _sqlite_pragmas(dbapi_connection) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
