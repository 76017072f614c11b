"""`SandboxManager`: picks the backend at startup, opens executors per run, serves workspace files, and
removes finished runs' workspaces once their retention is over (`_retention`)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import docker
from autobots.config import Settings
from autobots.errors import InvalidRequest, SandboxUnavailable
from autobots.sandbox._common import BackendKind, quota_bytes
from autobots.sandbox._docker import DockerBackend, DockerRunner
from autobots.sandbox._errors import SandboxError
from autobots.sandbox._executor import Runner, SandboxExecutor
from autobots.sandbox._local import LocalRunner
from autobots.sandbox._process import ProcessRunner
from autobots.sandbox._retention import RUN_ID, RunLease, empty_trash, sweep, take_lease
from autobots.sandbox._select import BackendChoice, Probe, choose, probe_bwrap, probe_docker
from autobots.sandbox._uids import UidAllocator
from autobots.sandbox._workspace import (
    WorkspaceFile,
    WorkspaceListing,
    open_workspace_file,
    read_workspace_file,
    scan_workspace,
)

logger = logging.getLogger(__name__)

UID_DIR = ".uids"
"""Under the workspace root: the lock files of the process backend's host uids (`_uids`)."""
_NOT_STARTED = BackendChoice(None, "sandbox manager not started", frozenset(), True)
_SWEEP_MIN_INTERVAL_S = 60.0
_SWEEP_MAX_INTERVAL_S = 3600.0


class SandboxManager:
    """Owns the sandbox backends of one service process.

    Args:
        settings: Service settings (`sandbox*`, `host`).
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._root = Path(settings.sandbox_workspace_root).resolve()
        self._choice = _NOT_STARTED
        self._docker_client: docker.DockerClient | None = None
        self._docker: DockerBackend | None = None
        self._live: dict[str, list[Runner]] = {}
        self._leases: dict[str, RunLease] = {}
        # Sandboxes get host uids of their own only when the service can switch to them (root).
        self._uids = UidAllocator(self._root / UID_DIR) if os.geteuid() == 0 else None
        self._sweeper: asyncio.Task[None] | None = None
        self._sweeping = asyncio.Lock()

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def choice(self) -> BackendChoice:
        return self._choice

    async def start(self) -> BackendChoice:
        """Detects the backends, reaps stale containers and starts filling the warm pool."""
        self._root.mkdir(parents=True, exist_ok=True)
        self._root.chmod(0o711)
        wants_docker = self._settings.sandbox in ("auto", "docker")
        if wants_docker:
            docker_probe, self._docker_client = await asyncio.to_thread(probe_docker, self._settings)
        else:
            docker_probe = Probe(False, f"docker not considered (sandbox = {self._settings.sandbox})")
        wants_bwrap = self._settings.sandbox in ("auto", "docker", "process")
        if wants_bwrap:
            bwrap_probe = await self._probe_bwrap()
        else:
            bwrap_probe = Probe(False, f"bubblewrap not considered (sandbox = {self._settings.sandbox})")
        self._choice = choose(self._settings, docker_probe=docker_probe, bwrap_probe=bwrap_probe)
        if self._docker_client is not None and "docker" in self._choice.available:
            self._docker = DockerBackend(self._docker_client, self._settings, self._root)
            reaped = await self._docker.reap()
            if reaped:
                logger.info("removed %d stale sandbox container(s)", reaped)
            self._docker.start_refill()
        logger.info("sandbox: %s (%s)", self._choice.kind or "disabled", self._choice.reason)
        if self._settings.sandbox_workspace_retention_hours > 0:
            # The workspaces past their retention are out of reach before the first request; deleting them (and
            # later sweeps) happens in the background.
            try:
                await self._sweep(delete=False)
            except OSError:
                logger.exception("could not sweep the workspaces under %s", self._root)
            self._sweeper = asyncio.create_task(self._sweep_periodically())
        return self._choice

    async def stop(self) -> None:
        """Stops the workspace sweeps; removes the warm pool and every live run's container."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        await asyncio.gather(*(self.release(run_id) for run_id in list(self._live)))
        if self._docker is not None:
            await self._docker.close()
            self._docker = None
        if self._docker_client is not None:
            await asyncio.to_thread(self._docker_client.close)
            self._docker_client = None

    def check_allowed(self, kind: str | None) -> BackendKind:
        """Resolves None to the default backend; raises SandboxUnavailable if `kind` cannot be used."""
        if kind is None:
            if self._choice.kind is None:
                raise SandboxUnavailable(f"code execution is disabled: {self._choice.reason}")
            return self._choice.kind
        if kind not in ("docker", "process", "local"):
            raise SandboxUnavailable(f"unknown sandbox {kind!r}; expected docker, process or local")
        if kind not in self._choice.available:
            usable = ", ".join(sorted(self._choice.available)) or "none"
            raise SandboxUnavailable(f"sandbox {kind!r} is not available here (available: {usable}; "
                                     f"{self._choice.reason})")
        return kind  # type: ignore[return-value]

    async def open_executor(
        self, *, run_id: str, kind: str | None = None, timeout_s: int | None = None, network: bool = False
    ) -> SandboxExecutor:
        """An executor for the run's workspace on the chosen (or default) backend."""
        resolved = self.check_allowed(kind)
        workspace = self.workspace_path(run_id)
        allow_net = network and self._settings.sandbox_allow_network
        runner: Runner
        if resolved == "docker":
            assert self._docker is not None
            runner = DockerRunner(self._docker, workspace, network=allow_net)
        elif resolved == "process":
            runner = ProcessRunner(workspace, settings=self._settings, uids=self._uids, network=allow_net)
        else:
            runner = LocalRunner(workspace)
        return SandboxExecutor(
            runner,
            run_id=run_id,
            timeout_s=timeout_s or self._settings.sandbox_default_timeout_s,
            output_limit=self._settings.sandbox_output_limit_bytes,
            quota_bytes=quota_bytes(self._settings),
            release=self.release,
            track=self._track,
        )

    def workspace_path(self, run_id: str) -> Path:
        """The run's host workspace directory (it may not exist yet)."""
        if not RUN_ID.fullmatch(run_id):
            raise InvalidRequest(f"invalid run id {run_id!r}", param="run_id")
        return self._root / run_id

    def list_files(self, run_id: str) -> list[dict[str, object]]:
        """Regular files of the run's workspace (code files excluded): path, size, modified_at."""
        return self.scan_files(run_id).files

    def scan_files(self, run_id: str) -> WorkspaceListing:
        """`list_files`, and whether the depth or entry limit cut the listing short. Blocking: use a thread."""
        return scan_workspace(self.workspace_path(run_id))

    def open_file(self, run_id: str, path: str) -> WorkspaceFile:
        """A workspace file, opened; anything outside the workspace, or reached through a symlink, is NotFound.
        Blocking: use a thread."""
        return open_workspace_file(self.workspace_path(run_id), path)

    def read_file(self, run_id: str, path: str) -> bytes:
        """A workspace file's bytes (all of them: for tests and small files; the API streams `open_file`)."""
        return read_workspace_file(self.workspace_path(run_id), path)

    async def release(self, run_id: str) -> None:
        """Stops and removes the run's container, if any; idempotent. The workspace stays, for
        `sandbox_workspace_retention_hours` from now."""
        for runner in self._live.pop(run_id, []):
            try:
                await runner.close()
            except Exception:
                logger.exception("could not release the sandbox of run %s", run_id)
        lease = self._leases.pop(run_id, None)
        if lease is not None:
            lease.release()

    async def sweep_workspaces(self) -> list[str]:
        """Removes the workspaces of runs that no process uses and that were last used longer ago than the
        retention (none when it is 0); returns their run ids."""
        return await self._sweep(delete=True)

    async def _sweep(self, *, delete: bool) -> list[str]:
        hours = self._settings.sandbox_workspace_retention_hours
        if hours <= 0:
            return []
        # One sweep at a time per process (the periodic one, or a caller's); other processes are kept apart by locks.
        async with self._sweeping:
            removed = await asyncio.to_thread(sweep, self._root, retention_s=hours * 3600)
            if delete:
                await asyncio.to_thread(empty_trash, self._root)
        if removed:
            logger.info("removed the workspaces of %d finished run(s) past their retention", len(removed))
        return removed

    async def _sweep_periodically(self) -> None:
        """Deletes what the sweep at start moved away, then sweeps every quarter of the retention (1 min..1 h)."""
        retention_s = self._settings.sandbox_workspace_retention_hours * 3600
        interval = min(_SWEEP_MAX_INTERVAL_S, max(_SWEEP_MIN_INTERVAL_S, retention_s / 4))
        try:
            async with self._sweeping:
                await asyncio.to_thread(empty_trash, self._root)
        except OSError:
            logger.exception("could not empty the workspace trash under %s", self._root)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_workspaces()
            except OSError:
                logger.exception("could not sweep the workspaces under %s", self._root)

    async def _track(self, run_id: str, runner: Runner) -> None:
        """Before each execution: `runner` is released with the run, and the run's workspace is in use (leased,
        so no sweep removes it) until then."""
        runners = self._live.setdefault(run_id, [])
        if runner not in runners:
            runners.append(runner)
        if run_id in self._leases:
            return
        # Without waiting when no sweep holds the lease (nearly always); else in a thread, for as long as it does.
        lease = take_lease(self._root, run_id, wait=False) or await asyncio.to_thread(take_lease, self._root, run_id)
        assert lease is not None
        if run_id in self._leases:
            lease.release()
        else:
            self._leases[run_id] = lease

    async def _probe_bwrap(self) -> Probe:
        """Probes bubblewrap as sandboxes will run: as a host uid taken for the probe (when root)."""
        if self._uids is None:
            return await probe_bwrap(self._root, None)
        try:
            lease = await asyncio.to_thread(self._uids.acquire)
        except (SandboxError, OSError) as exc:
            return Probe(False, f"no sandbox uid is available ({exc})")
        try:
            return await probe_bwrap(self._root, lease.uid)
        finally:
            lease.release()
