"""Async engine and session factory; URL translation between sync (alembic) and async drivers."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")
READER_THREADS = 4
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


def database_kind(url: str) -> str:
    """`sqlite`, `postgresql`, ...: what may be said about a database without naming where it is."""
    return make_url(url).get_backend_name()


class SqliteWriteLock:
    """Serializes write transactions across this server's processes (API and run workers) and, within a
    process, between its async write connection and its writer thread.

    SQLite's own busy handler makes a writer that finds the database locked by another process sleep
    (1, 2, 5 … 100 ms) and try again, so under many small transactions from several processes writers
    starve. An exclusive `flock` queues them in the kernel instead: a waiter wakes when the lock is
    released. Taken when a write transaction begins, released when its connection goes back to the pool.
    """

    def __init__(self, database_path: str) -> None:
        self._fd = os.open(f"{database_path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
        self._mutex = threading.Lock()

    def acquire_blocking(self) -> None:
        self._mutex.acquire()
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise

    async def acquire(self) -> None:
        """The lock, without blocking the event loop (a waiting thread does the waiting)."""
        if self._mutex.acquire(blocking=False):
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                self._mutex.release()
        waiting = asyncio.get_running_loop().run_in_executor(None, self.acquire_blocking)
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            # The thread still gets the lock; give it back then, as nobody will use it.
            waiting.add_done_callback(lambda done: done.exception() is None and self.release())
            raise

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._mutex.release()

    def close(self) -> None:
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
        # The writer thread's engine and the reader threads' (key: write?); they connect on first use.
        self._thread_engines: dict[bool, Engine] = {True: self._thread_engine(write=True),
                                                    False: self._thread_engine(write=False)}
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
        self._reader = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="db-reader")

    def _engine(self, url: str, *, begin: str, writer: bool) -> AsyncEngine:
        # Requests, run executors and the run journal each hold a connection only briefly (streams give
        # theirs back before streaming). SQLite takes one writer at a time anyway: its write engine has one
        # connection, so writers of this process queue cheaply in the pool; across processes (the API, its
        # run workers, the CLI) writers queue on `SqliteWriteLock`. The busy timeout covers other tools.
        if not self.is_sqlite:
            return create_async_engine(async_url(url), pool_size=10, max_overflow=30, pool_pre_ping=True)
        pool = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 300} if writer else {
            "pool_size": 20, "max_overflow": 30}
        engine = create_async_engine(async_url(url), connect_args={"timeout": 30}, **pool)
        self._serialize_writes(engine.sync_engine, begin=begin, lock=self._write_lock if writer else None,
                               acquire=lambda lock: await_only(lock.acquire()))  # in SQLAlchemy's greenlet
        return engine

    @staticmethod
    def _serialize_writes(engine: Any, *, begin: str, lock: SqliteWriteLock | None,
                          acquire: Callable[[SqliteWriteLock], None]) -> None:
        """SQLite: our own BEGIN, and (for writers) the write lock from BEGIN until the connection is back
        (a write engine has a single connection, so at most one transaction of it holds the lock)."""
        held = [False]

        def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            _sqlite_pragmas(dbapi_connection)
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)

        def on_begin(connection) -> None:  # type: ignore[no-untyped-def]
            if lock is not None:
                acquire(lock)
                held[0] = True
            connection.exec_driver_sql(begin)

        def on_checkin(_dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            if lock is not None and held[0]:
                held[0] = False
                lock.release()

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", on_begin)
        event.listen(engine.pool, "checkin", on_checkin)

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

    async def start_writer_thread(self) -> None:
        """Start the writer thread now rather than on the first write (a thread is created with the scheduling
        priority its creator has at that moment)."""
        await asyncio.get_running_loop().run_in_executor(self._writer, lambda: None)

    async def write_in_thread(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction on this process's writer thread.

        For the hot writes of run executors: the transaction (and, on SQLite, the write lock) is never held
        across event-loop turns, which take long in a process busy running many teams.
        """
        return await asyncio.get_running_loop().run_in_executor(self._writer, self._in_thread, work, True)

    async def read_in_thread(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one read-only transaction on this process's reader thread (SQLite: it never waits for
        writers). For hot reads: one thread hop for the whole read instead of one per statement, and one
        thread instead of a pool of them contending for the interpreter."""
        return await asyncio.get_running_loop().run_in_executor(self._reader, self._in_thread, work, False)

    def _in_thread(self, work: Callable[[Connection], T], write: bool) -> T:
        with self._thread_engines[write].begin() as connection:
            return work(connection)

    def _thread_engine(self, *, write: bool) -> Engine:
        size = 1 if write else READER_THREADS
        if not self.is_sqlite:
            return create_engine(sync_url(self.url), pool_size=size, max_overflow=1, pool_pre_ping=True)
        engine = create_engine(sync_url(self.url), connect_args={"timeout": 30, "check_same_thread": False},
                               pool_size=size, max_overflow=0)
        self._serialize_writes(engine, begin="BEGIN IMMEDIATE" if write else "BEGIN",
                               lock=self._write_lock if write else None, acquire=lambda lock: lock.acquire_blocking())
        return engine

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
        for write, engine in list(self._thread_engines.items()):
            await asyncio.get_running_loop().run_in_executor(self._writer if write else self._reader, engine.dispose)
        self._thread_engines.clear()
        self._writer.shutdown(wait=False)
        self._reader.shutdown(wait=False)
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
