"""Backend selection: pure rules, then the real probes on this machine."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from autobots.config import Settings
from autobots.errors import SandboxUnavailable
from autobots.sandbox import BackendChoice
from autobots.sandbox._select import Probe, choose

if TYPE_CHECKING:
    from tests.support.sandbox import Require, StartManager


DOCKER_OK = Probe(True, "docker engine 28.2.2 reachable, image autobots-sandbox:0.1.0 present")
DOCKER_DOWN = Probe(False, "no docker engine answers (connection refused)")
BWRAP_OK = Probe(True, "bubblewrap works")
BWRAP_DOWN = Probe(False, "bubblewrap probe failed: no user namespaces")


def pick(sandbox: str, docker_probe: Probe, bwrap_probe: Probe, host: str = "127.0.0.1") -> BackendChoice:
    return choose(Settings(sandbox=sandbox, host=host), docker_probe=docker_probe, bwrap_probe=bwrap_probe)


class TestChoose:
    def test_auto_prefers_docker(self) -> None:
        choice = pick("auto", DOCKER_OK, BWRAP_OK)
        assert choice == BackendChoice("docker", DOCKER_OK.detail, frozenset({"docker", "process"}), True)

    def test_auto_falls_back_to_process(self) -> None:
        choice = pick("auto", DOCKER_DOWN, BWRAP_OK)
        assert (choice.kind, choice.available, choice.isolated) == ("process", frozenset({"process"}), True)
        assert DOCKER_DOWN.detail in choice.reason

    def test_auto_with_nothing_refuses(self) -> None:
        choice = pick("auto", DOCKER_DOWN, BWRAP_DOWN)
        assert (choice.kind, choice.available) == (None, frozenset())
        assert "code execution refused" in choice.reason

    def test_none(self) -> None:
        assert pick("none", DOCKER_OK, BWRAP_OK).kind is None

    def test_local_on_loopback(self) -> None:
        choice = pick("local", DOCKER_OK, BWRAP_OK)
        assert (choice.kind, choice.isolated) == ("local", False)
        assert "local" in choice.available

    def test_local_refused_beyond_loopback(self) -> None:
        choice = pick("local", DOCKER_OK, BWRAP_OK, host="0.0.0.0")
        assert choice.kind is None
        assert "local" not in choice.available
        assert "beyond loopback" in choice.reason

    def test_local_never_available_unless_configured(self) -> None:
        assert "local" not in pick("auto", DOCKER_OK, BWRAP_OK).available

    def test_explicit_docker_unavailable(self) -> None:
        choice = pick("docker", DOCKER_DOWN, BWRAP_OK)
        assert (choice.kind, choice.available) == (None, frozenset({"process"}))
        assert choice.reason.startswith("docker sandbox configured but unavailable")

    def test_explicit_process(self) -> None:
        assert pick("process", DOCKER_OK, BWRAP_OK).kind == "process"


class TestManagerSelection:
    @pytest.mark.docker
    async def test_auto_with_docker(self, start_manager: StartManager, require: Require) -> None:
        manager = await start_manager()
        require("docker", manager.choice.kind == "docker", manager.choice.reason)
        assert "reachable" in manager.choice.reason and "present" in manager.choice.reason
        assert manager.check_allowed(None) == "docker"

    @pytest.mark.bwrap
    async def test_auto_without_docker_engine(
        self, start_manager: StartManager, monkeypatch: pytest.MonkeyPatch, require: Require
    ) -> None:
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        manager = await start_manager()
        require("process", "process" in manager.choice.available, manager.choice.reason)
        assert manager.choice.kind == "process"
        assert "no docker engine answers" in manager.choice.reason
        with pytest.raises(SandboxUnavailable):
            manager.check_allowed("docker")

    @pytest.mark.docker
    async def test_missing_image_says_how_to_build(
        self, start_manager: StartManager, docker_status: tuple[bool, str], require: Require
    ) -> None:
        require("docker", *docker_status)
        manager = await start_manager(sandbox_image="autobots-sandbox:missing-for-test")
        assert "run python -m autobots sandbox build" in manager.choice.reason
        assert "docker" not in manager.choice.available

    async def test_none_refuses_code(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="none")
        assert manager.choice.kind is None
        with pytest.raises(SandboxUnavailable) as caught:
            manager.check_allowed(None)
        assert (caught.value.status, caught.value.code, caught.value.param) == (422, "sandbox_unavailable", None)
        with pytest.raises(SandboxUnavailable):
            await manager.open_executor(run_id="r1")

    async def test_local_refused_off_loopback(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="local", host="0.0.0.0")
        assert manager.choice.kind is None
        with pytest.raises(SandboxUnavailable):
            manager.check_allowed("local")

    async def test_unknown_kind(self, start_manager: StartManager) -> None:
        manager = await start_manager()
        with pytest.raises(SandboxUnavailable):
            manager.check_allowed("vm")

    def test_not_started(self) -> None:
        from autobots.sandbox import SandboxManager

        assert SandboxManager(Settings()).choice.kind is None
