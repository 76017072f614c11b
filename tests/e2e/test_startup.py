"""The server refuses configurations that would expose it without authentication."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.servers import database_for, free_port, server_env

pytestmark = pytest.mark.e2e


def test_local_auth_on_all_interfaces_refuses_to_start(e2e_root, postgres_reset):
    workdir = e2e_root / "unsafe"
    workdir.mkdir()
    env = server_env(workdir, database_for(e2e_root, "unsafe", postgres_reset), AUTOBOTS_HOST="0.0.0.0",
                     AUTOBOTS_AUTH_MODE="local", AUTOBOTS_PORT=str(free_port()))
    # subprocess.run kills the child if it is still running at the timeout, so nothing is left serving.
    result = subprocess.run([sys.executable, "-m", "autobots", "serve"], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "loopback" in output
    assert "Uvicorn running" not in output
