"""End-to-end fixtures: real `python -m autobots serve` processes on free loopback ports.

Each server gets a temporary working directory (so no `config.json` is picked up) and its settings
through AUTOBOTS_* variables (`tests/support/servers.py`): a temporary SQLite file, or the PostgreSQL
database named by AUTOBOTS_DATABASE_URL (reset once, shared by the servers of the session), the explicitly
chosen `local` sandbox without a warm pool, and a temporary workspace root. Servers are shared per session
because each start costs a few seconds of imports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import POSTGRES_URL, reset_postgres, session_postgres_url
from tests.support.servers import (
    ServerProcess,
    create_api_keys,
    database_for,
    launch_server,
    stop_and_check,
    wait_ready,
)


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def postgres_reset() -> bool:
    """Reset the session servers' PostgreSQL database once per session when one is configured; True if so."""
    if POSTGRES_URL.startswith("postgresql"):
        reset_postgres(session_postgres_url())
        return True
    return False


@pytest.fixture(scope="session")
def launched(e2e_root: Path, postgres_reset: bool) -> Iterator[dict[str, ServerProcess]]:
    """Both servers, launched together: their imports overlap, which saves seconds per session."""
    servers = {"local": launch_server(e2e_root / "local", database_for(e2e_root, "local", postgres_reset))}
    if postgres_reset:
        # One shared PostgreSQL database: let the first server finish its migrations alone.
        wait_ready(servers["local"])
    servers["apikey"] = launch_server(e2e_root / "apikey", database_for(e2e_root, "apikey", postgres_reset),
                                      AUTOBOTS_AUTH_MODE="apikey")
    try:
        yield servers
    finally:
        for server in servers.values():
            stop_and_check(server)


@pytest.fixture(scope="session")
def server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A local-auth server on loopback."""
    return wait_ready(launched["local"])


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return server.base_url


@pytest.fixture(scope="session")
def apikey_server(launched: dict[str, ServerProcess]) -> ServerProcess:
    """A server that requires `Authorization: Bearer <key>`."""
    return wait_ready(launched["apikey"])


@pytest.fixture(scope="session")
def api_keys(apikey_server: ServerProcess) -> dict[str, str]:
    """Keys for alice and bob, made with `python -m autobots users add NAME` (the key is the last line)."""
    return create_api_keys(apikey_server, "alice", "bob")
