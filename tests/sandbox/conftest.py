"""Sandbox test fixtures: real engines only; skip when absent unless AUTOBOTS_REQUIRE_* says fail."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from autobots.config import Settings
from autobots.sandbox import SandboxManager
from autobots.sandbox._agent import AgentExecution
from autobots.sandbox._docker import LABEL
from autobots.sandbox._select import probe_docker
from docker.errors import DockerException

from tests.support.sandbox import Box, MakeBox, Require, StartManager, require_backend


@pytest.fixture
def require() -> Require:
    """`require_backend` as a fixture."""
    return require_backend


@pytest.fixture(scope="session")
def docker_status() -> tuple[bool, str]:
    probe, client = probe_docker(Settings(sandbox="docker"))
    if client is not None:
        client.close()
    return probe.ok, probe.detail


@pytest.fixture(scope="session", autouse=True)
def no_container_left(docker_status: tuple[bool, str]) -> Iterator[None]:
    """After the whole session, no container labelled autobots.sandbox by this test process may remain.

    Containers of other live services on the same engine (labelled with their own pid) are not ours.
    """
    yield
    if not docker_status[0]:
        return
    client = docker.from_env()
    try:
        mine = [f"{LABEL}=1", f"autobots.pid={os.getpid()}"]
        left = client.containers.list(all=True, filters={"label": mine})
    except DockerException:
        return
    finally:
        client.close()
    assert not left, f"sandbox containers left behind: {[c.short_id for c in left]}"


@pytest.fixture
def workspace_root() -> Iterator[Path]:
    """A workspace root the process backend's unprivileged uid can traverse (pytest's tmp_path is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="autobots-ws-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def make_settings(workspace_root: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sandbox": "auto",
            "sandbox_workspace_root": str(workspace_root),
            "sandbox_pool_size": 0,
            "sandbox_default_timeout_s": 3,
            "host": "127.0.0.1",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def start_manager(make_settings: Callable[..., Settings]) -> AsyncIterator[StartManager]:
    """Starts real managers and always stops them at teardown."""
    managers: list[SandboxManager] = []

    async def start(**overrides: Any) -> SandboxManager:
        manager = SandboxManager(make_settings(**overrides))
        managers.append(manager)
        await manager.start()
        return manager

    yield start
    for manager in managers:
        await manager.stop()


@pytest.fixture(
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("docker-exec", marks=pytest.mark.docker),
        pytest.param("process", marks=pytest.mark.bwrap),
        pytest.param("process-fresh", marks=pytest.mark.bwrap),
    ]
)
async def make_box(request: pytest.FixtureRequest, start_manager: StartManager,
                   monkeypatch: pytest.MonkeyPatch) -> MakeBox:
    """Starts a manager with the given settings overrides on which the parametrized isolated backend is
    available (or skips/fails the test), and returns it as a `Box`.

    `docker` and `process` run the test's code through the sandbox agent (for `process`, once an execution
    has started the run's resident sandbox). `docker-exec` and `process-fresh` are the same backends with the
    agent out of reach, so every execution takes the way a backend falls back to when its agent does not
    answer: a `docker exec`, or a fresh bubblewrap sandbox per execution.
    """
    kind, _, fallback = request.param.partition("-")

    async def make(**overrides: Any) -> Box:
        if fallback:
            monkeypatch.setattr(AgentExecution, "connect", _agent_out_of_reach)
        manager = await start_manager(**overrides)
        require_backend(kind, kind in manager.choice.available, manager.choice.reason)
        return Box(manager, kind, warm=kind == "process" and not fallback)

    return make


@pytest.fixture
async def box(make_box: MakeBox) -> Box:
    """`make_box()` with the default test settings."""
    return await make_box()


async def _agent_out_of_reach(workspace: Path) -> None:
    return None


@pytest.fixture
async def docker_manager(start_manager: StartManager) -> SandboxManager:
    manager = await start_manager(sandbox="docker")
    require_backend("docker", manager.choice.kind == "docker", manager.choice.reason)
    return manager
