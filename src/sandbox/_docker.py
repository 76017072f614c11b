"""The `docker` backend: one hardened container per run, a warm pool, and a reaper.

Workspaces and the pool: a pool container is started with its own empty directory
`<workspace_root>/.pool/<uuid>` bound at /workspace. When a run takes it, that directory is
renamed on the host to `<workspace_root>/<run_id>` (a bind mount follows the directory, not its
name), so `workspace_path(run_id)` is the same for every backend. A run whose workspace already
holds files (a resumed run) gets a fresh container bound to it instead.

Executions: the code file is written into the workspace, then handed to the container's PID 1, a small agent
(`_agent_script.py`), over a unix socket in the workspace's code directory: the agent starts the code as uid
1000, streams its output back and, once the code has exited, kills every other process of the sandbox user
(background jobs, a fork bomb's survivors) before it reports the exit status. No docker API call is on that
path, so an execution costs what starting the interpreter costs. When the agent cannot be reached (a container
just created and not listening yet, a socket the code removed), the execution runs by one `docker exec` of a
shell wrapper that does the same: the code under `timeout -s KILL` (a backstop), then `kill -9 -1`. The
wrapper first writes `STARTED`, so an exec the engine could not start (its error comes back on the output
stream) is told apart from the code's output, and reported as a start failure. The code runs as the same uid
as that wrapper and could kill it; so unless the exec reports a status below 128 (the wrapper finished), a
separate `kill -9 -1` exec follows in the background and the next execution waits for it. The host watchdog
stops an execution on timeout or cancellation by closing the agent connection (the agent kills everything), or
by the same kill exec; if that kill cannot run (pids exhausted) the container is restarted. Every docker SDK
call runs in a worker thread.

Start failures never reach the code's output: a container that cannot be created is retried (with backoff,
`START_ATTEMPTS` times) and then raises `SandboxError`; an execution that could not start reports a start
failure (the executor retries it), and a container found dead then is replaced by a new one.

Limits: memory (swap included), CPUs, pids, a read-only root, a /tmp and a /dev/shm of `sandbox_tmpfs_mb`
each (tmpfs pages count against the container's memory limit), and RLIMIT_FSIZE at the workspace quota.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
from autobots.config import Settings
from autobots.sandbox._agent import (
    AGENT_SCRIPT,
    KILL_SETTLE_S,
    AgentExecution,
    agent_listening,
    remove_agent_socket,
)
from autobots.sandbox._common import (
    START_ATTEMPTS,
    BackendKind,
    BoundedOutput,
    Outcome,
    StartGate,
    open_code_dir,
    quota_bytes,
    start_backoff_s,
    tmpfs_bytes,
)
from autobots.sandbox._errors import SandboxError
from autobots.sandbox._watch import supervise
from autogen_core import CancellationToken
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from docker.types import Ulimit

logger = logging.getLogger(__name__)

LABEL = "autobots.sandbox"
SANDBOX_USER = "1000:1000"
POOL_DIR = ".pool"
# A container taken from the pool is replaced once the execution that took it has ended, or after
# this long: creating a container while that first execution runs would slow it down.
_REFILL_DELAY_S = 1.0
# kill(-1) signals every process of the sandbox user except the caller and PID 1, which the kernel
# shields as the namespace's init. Builtins only: no fork needed.
_KILL_ALL = ["bash", "-c", "kill -9 -1; kill -9 -1"]
# Runs one execution: `sh -c _RUN_THEN_KILL_ALL sh <timeout limit> <argv...>`. It announces itself with
# `STARTED` (octal escapes for printf). stderr is merged into stdout for the whole tree, so the output keeps
# the order it was written in. `timeout` has exited
# before the kill (it is not killed mid-way, so its 124/137 backstop status survives), and kill(-1)
# spares its caller, the wrapper, which then exits with the code's status.
_RUN_THEN_KILL_ALL = ("printf '\\001autobots: code started\\002'; "
                      'limit=$1; shift; exec 2>&1; timeout -s KILL "$limit" "$@"; status=$?; '
                      'kill -9 -1 2>/dev/null; kill -9 -1 2>/dev/null; exit $status')
# An exec status at or above this may mean the wrapper itself was killed (128 + signal) before its kill.
_SIGNALLED = 128


def prepare_workspace_dir(path: Path) -> None:
    """Creates `path` and its code directory (where the agent listens) writable by the container user (uid
    1000) and nobody else."""
    path.mkdir(parents=True, exist_ok=True)
    root = os.geteuid() == 0
    if root:
        os.chown(path, 1000, 1000)
        path.chmod(0o750)
    else:
        path.chmod(0o777)
    # A resumed run's workspace is the sandbox's: a symlink planted as the code directory is left alone.
    with contextlib.suppress(OSError):
        code_dir = open_code_dir(path, create=True)
        try:
            if root:
                os.fchown(code_dir, 1000, 1000)
            else:
                os.fchmod(code_dir, 0o777)
        finally:
            os.close(code_dir)
    remove_agent_socket(path)


class DockerBackend:
    """Creates, pools and removes the sandbox containers of one manager.

    Args:
        client: A connected docker SDK client.
        settings: Image name and resource limits.
        workspace_root: Absolute host directory holding the run workspaces.
    """

    def __init__(self, client: docker.DockerClient, settings: Settings, workspace_root: Path) -> None:
        self._client = client
        self._settings = settings
        self._root = workspace_root
        self._instance = uuid.uuid4().hex
        self._pool: list[tuple[Container, Path]] = []
        self._refill_task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def api(self) -> docker.APIClient:
        return self._client.api

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: "1", "autobots.instance": self._instance, "autobots.host": socket.gethostname(),
                "autobots.pid": str(os.getpid())}

    async def reap(self) -> int:
        """Removes labelled containers left by managers that are gone; returns how many."""
        return await asyncio.to_thread(self._reap_blocking)

    def _reap_blocking(self) -> int:
        removed = 0
        for container in self._client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
            labels = container.labels
            if labels.get("autobots.instance") == self._instance or _owner_alive(labels):
                continue
            with contextlib.suppress(NotFound):
                container.remove(force=True)
                removed += 1
        return removed

    def start_refill(self) -> None:
        """Tops the warm pool up in the background (nothing to do when it is full)."""
        if self._closed or len(self._pool) >= self._settings.sandbox_pool_size:
            return
        if self._refill_task is None or self._refill_task.done():
            self._refill_task = asyncio.create_task(self._refill())

    async def _refill(self) -> None:
        while not self._closed and len(self._pool) < self._settings.sandbox_pool_size:
            slot = self._root / POOL_DIR / uuid.uuid4().hex
            try:
                await asyncio.to_thread(prepare_workspace_dir, slot)
                container = await asyncio.to_thread(self._create_blocking, slot, False)
                await self._agent_started(slot)
            except DockerException:
                logger.exception("could not start a warm sandbox container")
                return
            if self._closed:
                await asyncio.to_thread(_remove_blocking, container)
                return
            self._pool.append((container, slot))

    async def acquire(self, workspace: Path, *, network: bool) -> Container:
        """A started container whose /workspace is `workspace` (taken from the pool when possible).

        Raises:
            SandboxError: No container could be created and started (after `START_ATTEMPTS` tries when the
                engine's failure may be transient).
        """
        if not network and self._pool and _is_empty_or_missing(workspace):
            container, slot = self._pool.pop(0)
            asyncio.get_running_loop().call_later(_REFILL_DELAY_S, self.start_refill)
            await asyncio.to_thread(_move_slot, slot, workspace)
            return container
        await asyncio.to_thread(prepare_workspace_dir, workspace)
        allow = network and self._settings.sandbox_allow_network
        tries = 0
        while True:
            try:
                container = await asyncio.to_thread(self._create_blocking, workspace, allow)
            except DockerException as exc:
                tries += 1
                # The engine refusing the request (4xx: a bad limit, a missing image) will refuse it again.
                transient = not isinstance(exc, APIError) or exc.is_server_error()
                logger.warning("could not start a sandbox container (try %d of %d): %s", tries, START_ATTEMPTS, exc)
                if not transient or tries >= START_ATTEMPTS:
                    raise SandboxError(f"the sandbox container could not be started: {_first_line(exc)}") from exc
                await asyncio.sleep(start_backoff_s(tries - 1))
                continue
            await self._agent_started(workspace)
            return container

    @staticmethod
    async def _agent_started(workspace: Path) -> None:
        if not await agent_listening(workspace):
            logger.warning("the sandbox agent on %s is not listening; executions go through docker exec",
                           workspace.name)

    def _create_blocking(self, workspace: Path, network: bool) -> Container:
        """Creates and starts a container; one that was created but did not start is removed."""
        s = self._settings
        memory = f"{s.sandbox_memory_mb}m"
        tmpfs = tmpfs_bytes(s)
        fsize = quota_bytes(s)
        container = self._client.containers.create(
            s.sandbox_image,
            command=["python3", "-c", AGENT_SCRIPT],
            detach=True,
            labels=self.labels,
            network_mode="bridge" if network else "none",
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(s.sandbox_cpus * 1e9),
            pids_limit=s.sandbox_pids_limit,
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={tmpfs},mode=1777"},
            shm_size=tmpfs,
            ulimits=[Ulimit(name="fsize", soft=fsize, hard=fsize)],
            volumes={str(workspace): {"bind": "/workspace", "mode": "rw"}},
            user=SANDBOX_USER,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            working_dir="/workspace",
            environment={"HOME": "/tmp", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
        )
        try:
            container.start()
        except BaseException:
            _remove_blocking(container)
            raise
        return container

    async def remove(self, container: Container) -> None:
        await asyncio.to_thread(_remove_blocking, container)

    async def close(self) -> None:
        """Stops refilling and removes the pool containers and their empty directories."""
        self._closed = True
        if self._refill_task is not None:
            with contextlib.suppress(Exception):
                await self._refill_task
        pool, self._pool = self._pool, []
        await asyncio.gather(*(self.remove(container) for container, _ in pool))
        for _, slot in pool:
            with contextlib.suppress(OSError):
                slot.rmdir()


class DockerRunner:
    """Runs commands in one run's container, acquired on first use: through its agent, else by `docker exec`.

    Args:
        backend: The manager's docker backend.
        workspace: Host directory of the run (bound at /workspace).
        network: Whether the run asked for network (granted only if settings allow it).
    """

    kind: BackendKind = "docker"

    def __init__(self, backend: DockerBackend, workspace: Path, *, network: bool) -> None:
        self.workspace = workspace
        self._backend = backend
        self._network = network
        self.container: Container | None = None
        self._current: asyncio.Future[int] | None = None
        self._cleanup: asyncio.Future[None] | None = None
        self._killed_all = False
        self._exec_error: str | None = None
        self.executions_by_agent = 0
        self.executions_by_exec = 0

    async def prepare(self) -> None:
        if self.container is None:
            self.container = await self._backend.acquire(self.workspace, network=self._network)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome:
        await self.prepare()
        await self._finish_cleanup()
        assert self.container is not None
        # The in-container limit is a backstop; the host watchdog normally fires first.
        limit = math.ceil(timeout_s) + 2
        self._killed_all = False
        agent = await AgentExecution.connect(self.workspace)
        if agent is not None:
            self.executions_by_agent += 1
            self._current = agent.start(argv, limit_s=limit, output=output)
            outcome = await supervise(self._current, timeout_s=timeout_s, cancellation_token=cancellation_token,
                                      kill=lambda: self._stop_agent_execution(agent))
            self._killed_all = agent.killed_all
            outcome.start_error = agent.start_error
        else:
            self.executions_by_exec += 1
            command = ["sh", "-c", _RUN_THEN_KILL_ALL, "sh", str(limit), *argv]
            gate = StartGate(output)
            self._exec_error = None
            self._current = asyncio.ensure_future(self._exec(command, gate))
            outcome = await supervise(self._current, timeout_s=timeout_s, cancellation_token=cancellation_token,
                                      kill=self._kill)
            if not gate.started and not (outcome.timed_out or outcome.cancelled):
                outcome.start_error = (gate.preamble() or self._exec_error
                                       or f"docker exec exited with status {outcome.exit_code}")
        self._backend.start_refill()
        if outcome.start_error is not None:
            # Nothing ran. A container that died is replaced on the next try (`prepare` makes a new one).
            await self._drop_if_dead()
            return outcome
        if not (outcome.timed_out or outcome.cancelled or self._killed_all):
            # Nothing confirmed that the leftovers were killed (the code killed the wrapper, the agent
            # connection broke): kill them now, and have the next execution (or close) wait for it.
            self._cleanup = asyncio.ensure_future(self._kill())
        return outcome

    async def _stop_agent_execution(self, agent: AgentExecution) -> None:
        if not await agent.stop():
            await self._kill()

    async def _finish_cleanup(self) -> None:
        cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            with contextlib.suppress(Exception):
                await cleanup

    async def _drop_if_dead(self) -> None:
        container = self.container
        if container is None:
            return
        try:
            await asyncio.to_thread(container.reload)
            running = container.status == "running"
        except NotFound:
            running = False
        except DockerException:
            return
        if not running:
            logger.warning("sandbox container %s is no longer running; the run gets a new one", container.short_id)
            self.container = None
            await self._backend.remove(container)

    async def _exec(self, command: list[str], output: StartGate) -> int:
        code, self._killed_all = await asyncio.to_thread(self._exec_blocking, command, output)
        return code

    def _exec_blocking(self, command: list[str], output: StartGate) -> tuple[int, bool]:
        """Runs `command` by one exec (three API calls): (exit code, whether the wrapper finished).

        The exit code is read once the output stream has ended, so the exec has normally exited
        already; `exec_inspect` is polled only in case the engine has not recorded that yet.
        """
        assert self.container is not None
        api = self._backend.api
        try:
            exec_id = api.exec_create(self.container.id, command, workdir="/workspace", user=SANDBOX_USER)["Id"]
            for chunk in api.exec_start(exec_id, stream=True):
                output.feed(chunk)
            for _ in range(50):
                info = api.exec_inspect(exec_id)
                if not info.get("Running") and info.get("ExitCode") is not None:
                    code = int(info["ExitCode"])
                    return code, 0 <= code < _SIGNALLED
                time.sleep(0.05)
        except DockerException as exc:
            if output.started:
                output.feed(f"sandbox error: {exc}\n".encode())
            else:
                self._exec_error = _first_line(exc)
        return 1, False

    async def _kill(self) -> None:
        """Kills every process of the sandbox user except PID 1; restarts the container if that fails."""
        container = self.container
        if container is None:
            return
        killed = False
        try:
            result = await asyncio.to_thread(container.exec_run, _KILL_ALL, user=SANDBOX_USER)
            killed = result.exit_code in (0, 1)
        except DockerException:
            pass
        current = self._current
        if killed and current is not None:
            with contextlib.suppress(TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(current), timeout=KILL_SETTLE_S)
            killed = current.done()
        if not killed:
            logger.warning("could not kill the processes of sandbox %s; restarting it", container.short_id)
            await asyncio.to_thread(container.restart, timeout=0)

    async def close(self) -> None:
        """Removes the run's container; the workspace stays."""
        await self._finish_cleanup()
        container, self.container = self.container, None
        if container is not None:
            await self._backend.remove(container)


def _remove_blocking(container: Container) -> None:
    with contextlib.suppress(NotFound):
        container.remove(force=True)


def _move_slot(slot: Path, workspace: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        workspace.rmdir()
    slot.rename(workspace)


def _is_empty_or_missing(path: Path) -> bool:
    try:
        return not any(path.iterdir())
    except FileNotFoundError:
        return True


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _owner_alive(labels: dict[str, Any]) -> bool:
    """Whether the container belongs to a live manager process on this host (this one included)."""
    if labels.get("autobots.host") != socket.gethostname():
        return False
    try:
        pid = int(labels.get("autobots.pid", ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
