"""`SandboxManager`: picks the backend at startup, opens executors per run, serves workspace files."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from pathlib import Path

import docker
from autobots.config import Settings
from autobots.errors import InvalidRequest, SandboxUnavailable
from autobots.sandbox._common import BackendKind
from autobots.sandbox._docker import DockerBackend, DockerRunner
from autobots.sandbox._executor import Runner, SandboxExecutor
from autobots.sandbox._local import LocalRunner
from autobots.sandbox._process import HOST_UID_BASE, ProcessRunner
from autobots.sandbox._select import BackendChoice, Probe, choose, probe_bwrap, probe_docker
from autobots.sandbox._workspace import list_workspace_files, read_workspace_file

logger = logging.getLogger(__name__)

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_UID_RANGE = 65536
_NOT_STARTED = BackendChoice(None, "sandbox manager not started", frozenset(), True)


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
        self._uids = itertools.count()

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
            bwrap_probe = await probe_bwrap(self._root, self._host_uid_base())
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
        return self._choice

    async def stop(self) -> None:
        """Removes the warm pool and every live run's container."""
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
            uid = self._host_uid_base()
            host_uid = None if uid is None else uid + next(self._uids) % _UID_RANGE
            runner = ProcessRunner(workspace, settings=self._settings, host_uid=host_uid, network=allow_net)
        else:
            runner = LocalRunner(workspace)
        return SandboxExecutor(
            runner,
            run_id=run_id,
            timeout_s=timeout_s or self._settings.sandbox_default_timeout_s,
            output_limit=self._settings.sandbox_output_limit_bytes,
            release=self.release,
            track=self._track,
        )

    def workspace_path(self, run_id: str) -> Path:
        """The run's host workspace directory (it may not exist yet)."""
        if not _RUN_ID.fullmatch(run_id) or run_id in (".", ".."):
            raise InvalidRequest(f"invalid run id {run_id!r}", param="run_id")
        return self._root / run_id

    def list_files(self, run_id: str) -> list[dict[str, object]]:
        """Regular files of the run's workspace (code files excluded): path, size, modified_at."""
        return list_workspace_files(self.workspace_path(run_id))

    def read_file(self, run_id: str, path: str) -> bytes:
        """A workspace file's bytes; anything outside the workspace, or reached through a symlink, is NotFound."""
        return read_workspace_file(self.workspace_path(run_id), path)

    async def release(self, run_id: str) -> None:
        """Stops and removes the run's container, if any; idempotent. The workspace stays."""
        for runner in self._live.pop(run_id, []):
            try:
                await runner.close()
            except Exception:
                logger.exception("could not release the sandbox of run %s", run_id)

    def _track(self, run_id: str, runner: Runner) -> None:
        runners = self._live.setdefault(run_id, [])
        if runner not in runners:
            runners.append(runner)

    @staticmethod
    def _host_uid_base() -> int | None:
        return HOST_UID_BASE if os.geteuid() == 0 else None
