"""Docker-only behaviour: container per run, hardening, warm pool, reaper, release."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import pytest
from autobots.sandbox import SandboxExecutor, SandboxManager
from autobots.sandbox._docker import LABEL, DockerRunner
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from tests.support.sandbox import Require, StartManager


pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def needs_docker(docker_status: tuple[bool, str], require: Require) -> None:
    require("docker", *docker_status)


def runner_of(executor: SandboxExecutor) -> DockerRunner:
    runner = executor.runner
    assert isinstance(runner, DockerRunner)
    return runner


def container_of(executor: SandboxExecutor) -> str:
    container = runner_of(executor).container
    assert container is not None
    return str(container.id)


def labelled_containers() -> list[str]:
    client = docker.from_env()
    try:
        return [c.id for c in client.containers.list(all=True, filters={"label": [f"{LABEL}=1"]})]
    finally:
        client.close()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


class TestContainers:
    async def test_ten_concurrent_runs_get_their_own_container(self, docker_manager: SandboxManager) -> None:
        executors = [await docker_manager.open_executor(run_id=f"c{i}", timeout_s=20) for i in range(10)]
        code = [CodeBlock("import socket\nprint(socket.gethostname())", "python")]
        results = await asyncio.gather(*(e.execute_code_blocks(code, CancellationToken()) for e in executors))
        assert [r.exit_code for r in results] == [0] * 10
        assert len({r.output for r in results}) == 10
        ids = {container_of(e) for e in executors}
        assert len(ids) == 10
        await asyncio.gather(*(docker_manager.release(f"c{i}") for i in range(10)))
        assert ids.isdisjoint(labelled_containers())

    async def test_code_blocks_of_a_run_share_one_container(self, docker_manager: SandboxManager) -> None:
        executor = await docker_manager.open_executor(run_id="same")
        first = await executor.execute_code_blocks([CodeBlock("hostname", "sh")], CancellationToken())
        second = await executor.execute_code_blocks([CodeBlock("hostname", "sh")], CancellationToken())
        assert first.output == second.output

    async def test_container_is_hardened(self, docker_manager: SandboxManager) -> None:
        executor = await docker_manager.open_executor(run_id="hardened")
        await executor.execute_code_blocks([CodeBlock("true", "sh")], CancellationToken())
        client = docker.from_env()
        try:
            attrs = client.containers.get(container_of(executor)).attrs
        finally:
            client.close()
        host = attrs["HostConfig"]
        settings = docker_manager.settings
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Memory"] == settings.sandbox_memory_mb * 1024 * 1024
        assert host["PidsLimit"] == settings.sandbox_pids_limit
        assert host["NanoCpus"] == int(settings.sandbox_cpus * 1e9)
        assert attrs["Config"]["User"] == "1000:1000"
        mounts = [(m["Destination"], m["RW"]) for m in attrs["Mounts"]]
        assert mounts == [("/workspace", True)]
        assert attrs["Mounts"][0]["Source"] == str(docker_manager.workspace_path("hardened"))

    async def test_release_is_idempotent_and_keeps_workspace(self, docker_manager: SandboxManager) -> None:
        executor = await docker_manager.open_executor(run_id="rel")
        await executor.execute_code_blocks([CodeBlock("echo kept > kept.txt", "sh")], CancellationToken())
        container = container_of(executor)
        await docker_manager.release("rel")
        await docker_manager.release("rel")
        assert container not in labelled_containers()
        assert docker_manager.read_file("rel", "kept.txt") == b"kept\n"
        again = await executor.execute_code_blocks([CodeBlock("cat kept.txt", "sh")], CancellationToken())
        assert (again.exit_code, again.output) == (0, "kept\n")


class TestPool:
    async def test_run_takes_a_warm_container(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="docker", sandbox_pool_size=2)
        assert manager.choice.kind == "docker"
        backend = manager._docker
        assert backend is not None
        await wait_for(lambda: len(backend._pool) == 2)
        warm = {c.id for c, _ in backend._pool}
        executor = await manager.open_executor(run_id="pooled")
        result = await executor.execute_code_blocks([CodeBlock("echo hi > a.txt; ls", "sh")], CancellationToken())
        assert (result.exit_code, result.output) == (0, "a.txt\n")
        assert container_of(executor) in warm
        assert [f["path"] for f in manager.list_files("pooled")] == ["a.txt"]
        await wait_for(lambda: len(backend._pool) == 2)
        await manager.stop()
        assert not set(labelled_containers()) & (warm | {c.id for c, _ in backend._pool})

    async def test_reaper_removes_stale_containers(self, start_manager: StartManager, workspace_root) -> None:
        client = docker.from_env()
        try:
            stale = client.containers.run(
                "autobots-sandbox:0.1.0", ["sleep", "infinity"], detach=True, network_mode="none",
                labels={LABEL: "1", "autobots.host": "gone-host", "autobots.pid": "1"},
            )
        finally:
            client.close()
        manager = await start_manager(sandbox="docker")
        assert manager.choice.kind == "docker"
        assert stale.id not in labelled_containers()


class TestAgent:
    """Executions go to the container's PID 1 over a socket in the workspace, not through `docker exec`."""

    async def test_executions_in_a_warm_container_go_through_its_agent(self, start_manager: StartManager) -> None:
        manager = await start_manager(sandbox="docker", sandbox_pool_size=1)
        backend = manager._docker
        assert backend is not None
        await wait_for(lambda: len(backend._pool) == 1)
        executor = await manager.open_executor(run_id="agent-warm")
        first = await executor.execute_code_blocks([CodeBlock("import os\nprint(os.getuid())", "python")],
                                                   CancellationToken())
        second = await executor.execute_code_blocks([CodeBlock("echo out; echo err >&2; exit 3", "sh")],
                                                    CancellationToken())
        assert (first.exit_code, first.output) == (0, "1000\n")
        assert (second.exit_code, second.output) == (3, "out\nerr\n")
        runner = runner_of(executor)
        assert (runner.executions_by_agent, runner.executions_by_exec) == (2, 0)

    async def test_a_new_container_is_used_once_its_agent_listens(self, docker_manager: SandboxManager) -> None:
        executor = await docker_manager.open_executor(run_id="agent-new")
        result = await executor.execute_code_blocks([CodeBlock("print('hi')", "python")], CancellationToken())
        assert (result.exit_code, result.output) == (0, "hi\n")
        runner = runner_of(executor)
        assert (runner.executions_by_agent, runner.executions_by_exec) == (1, 0)

    async def test_a_killed_signal_is_reported_as_128_plus_the_signal(self, docker_manager: SandboxManager) -> None:
        executor = await docker_manager.open_executor(run_id="agent-signal")
        result = await executor.execute_code_blocks([CodeBlock("kill -TERM $$", "sh")], CancellationToken())
        assert result.exit_code == 128 + 15

    async def test_code_that_removes_the_agent_socket_still_gets_its_next_execution(
        self, docker_manager: SandboxManager
    ) -> None:
        executor = await docker_manager.open_executor(run_id="agent-gone")
        code = "import os\nos.unlink('.autobots/agent.sock')\nprint('removed')"
        removed = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
        assert (removed.exit_code, removed.output) == (0, "removed\n")
        started = await executor.execute_code_blocks([CodeBlock("sleep 30 >/dev/null 2>&1 &\necho next", "sh")],
                                                     CancellationToken())
        assert (started.exit_code, started.output) == (0, "next\n")
        sleepers = ("import os\nprint(sum(open(f'/proc/{p}/cmdline', 'rb').read().startswith(b'sleep')\n"
                    "          for p in os.listdir('/proc') if p.isdigit() and p != str(os.getpid())))")
        after = await executor.execute_code_blocks([CodeBlock(sleepers, "python")], CancellationToken())
        assert (after.exit_code, after.output) == (0, "0\n")
        runner = runner_of(executor)
        assert (runner.executions_by_agent, runner.executions_by_exec) == (1, 2)

    async def test_a_symlink_planted_as_the_agent_socket_is_not_followed(
        self, docker_manager: SandboxManager, tmp_path: Path
    ) -> None:
        host_socket = tmp_path / "host.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(host_socket))
        listener.listen(1)
        listener.setblocking(False)
        executor = await docker_manager.open_executor(run_id="agent-link")
        code = f"import os\nos.unlink('.autobots/agent.sock')\nos.symlink({str(host_socket)!r}, '.autobots/agent.sock')"
        try:
            planted = await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())
            assert planted.exit_code == 0
            after = await executor.execute_code_blocks([CodeBlock("echo fine", "sh")], CancellationToken())
            assert (after.exit_code, after.output) == (0, "fine\n")
            with pytest.raises(BlockingIOError):
                listener.accept()
        finally:
            listener.close()


class TestNetworkOptIn:
    async def network_mode(self, manager: SandboxManager, run_id: str, *, network: bool) -> str:
        executor = await manager.open_executor(run_id=run_id, network=network)
        await executor.execute_code_blocks([CodeBlock("true", "sh")], CancellationToken())
        client = docker.from_env()
        try:
            return str(client.containers.get(container_of(executor)).attrs["HostConfig"]["NetworkMode"])
        finally:
            client.close()

    async def test_a_workflow_gets_a_network_only_when_the_server_allows_it(self, start_manager: StartManager,
                                                                        require: Require) -> None:
        allowed = await start_manager(sandbox="docker", sandbox_allow_network=True, sandbox_pool_size=0)
        require("docker", allowed.choice.kind == "docker", allowed.choice.reason)
        assert await self.network_mode(allowed, "net-yes", network=True) != "none"
        assert await self.network_mode(allowed, "net-not-asked", network=False) == "none"

    async def test_asking_for_a_network_is_ignored_when_the_server_forbids_it(self, docker_manager) -> None:
        assert await self.network_mode(docker_manager, "net-no", network=True) == "none"
