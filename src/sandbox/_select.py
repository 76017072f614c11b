"""Backend detection and selection: which sandbox this machine and configuration allow."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import docker
from autobots.config import Settings
from autobots.sandbox._common import BackendKind
from autobots.sandbox._process import drop_args
from docker.errors import DockerException, ImageNotFound

_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BackendChoice:
    """The sandbox backend picked at startup.

    Args:
        kind: The default backend, or None when code execution is refused.
        reason: Human-readable explanation of the choice.
        available: Every backend usable right now under the configuration.
        isolated: False only for `local`.
    """

    kind: BackendKind | None
    reason: str
    available: frozenset[str]
    isolated: bool


@dataclass(frozen=True)
class Probe:
    """Whether one backend works on this machine, and why (not)."""

    ok: bool
    detail: str


def probe_docker(settings: Settings) -> tuple[Probe, docker.DockerClient | None]:
    """Blocking: connects to the engine and looks the image up. Call it through `asyncio.to_thread`."""
    try:
        client = docker.from_env(timeout=max(60, settings.sandbox_default_timeout_s + 30))
        client.ping()
        version = client.version().get("Version", "?")
    except DockerException as exc:
        return Probe(False, f"no docker engine answers ({_first_line(exc)})"), None
    try:
        client.images.get(settings.sandbox_image)
    except ImageNotFound:
        client.close()
        return Probe(False, f"docker engine {version} reachable but image {settings.sandbox_image} is missing "
                            "(run python -m autobots sandbox build)"), None
    except DockerException as exc:
        client.close()
        return Probe(False, f"docker engine {version}: image lookup failed ({_first_line(exc)})"), None
    return Probe(True, f"docker engine {version} reachable, image {settings.sandbox_image} present"), client


async def probe_bwrap(workspace_root: Path, host_uid: int | None) -> Probe:
    """Runs `bwrap --unshare-all --ro-bind / / ... true` once, as the uid sandboxed code will run as."""
    if not sys.platform.startswith("linux"):
        return Probe(False, "bubblewrap needs Linux")
    if host_uid is not None and not _reachable_by_others(workspace_root):
        return Probe(False, f"workspace root {workspace_root} is not traversable by the sandbox uid "
                            "(every parent directory needs o+x)")
    # A sized tmpfs and a /proc, as every sandbox has: bubblewrap before 0.5 has no --size, and a container that
    # masks parts of /proc (docker's default) cannot mount one; either must fail here, not on every execution.
    argv = [*drop_args(host_uid), "bwrap", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc",
            "--size", "1048576", "--tmpfs", "/tmp", "true"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        return Probe(False, f"bubblewrap not usable ({exc})")
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=_PROBE_TIMEOUT_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return Probe(False, "bubblewrap probe timed out")
    if proc.returncode != 0:
        return Probe(False, f"bubblewrap probe failed: {err.decode(errors='replace').strip()[:200]}")
    return Probe(True, "bubblewrap works")


def choose(settings: Settings, *, docker_probe: Probe, bwrap_probe: Probe) -> BackendChoice:
    """Pure selection logic from the configuration and the probes' results."""
    local_ok = settings.sandbox == "local" and settings.listens_on_loopback
    available = {
        kind
        for kind, ok in (("docker", docker_probe.ok), ("process", bwrap_probe.ok), ("local", local_ok))
        if ok
    }
    frozen = frozenset(available)
    mode = settings.sandbox
    if mode == "none":
        return BackendChoice(None, "sandbox disabled by configuration (sandbox = none)", frozenset(), True)
    if mode == "local":
        if not local_ok:
            return BackendChoice(None, f"local sandbox refused: the server listens on {settings.host}, "
                                       "beyond loopback; local execution has no isolation", frozen, True)
        return BackendChoice("local", "local execution explicitly configured (NO isolation)", frozen, False)
    if mode == "docker":
        return _explicit("docker", docker_probe, frozen)
    if mode == "process":
        return _explicit("process", bwrap_probe, frozen)
    if docker_probe.ok:
        return BackendChoice("docker", docker_probe.detail, frozen, True)
    if bwrap_probe.ok:
        return BackendChoice("process", f"{docker_probe.detail}; using bubblewrap ({bwrap_probe.detail})", frozen, True)
    return BackendChoice(None, f"no sandbox available: {docker_probe.detail}; {bwrap_probe.detail}; "
                               "code execution refused", frozen, True)


def _explicit(kind: BackendKind, probe: Probe, available: frozenset[str]) -> BackendChoice:
    if probe.ok:
        return BackendChoice(kind, probe.detail, available, True)
    return BackendChoice(None, f"{kind} sandbox configured but unavailable: {probe.detail}", available, True)


def _reachable_by_others(path: Path) -> bool:
    for parent in path.resolve().parents:
        with contextlib.suppress(OSError):
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
    return True


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
