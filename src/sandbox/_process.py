"""The `process` backend: bubblewrap namespaces plus rlimits, no container engine needed.

When the service runs as root, every sandboxed process runs under a dedicated unprivileged host
uid (one per open executor, from `HOST_UID_BASE`): RLIMIT_NPROC is not enforced for root, even
inside a user namespace, so this is what contains a fork bomb. The switch is made by util-linux
`unshare --setgid --setuid` with no namespace flags (it drops the groups and sets gid and uid, with
none of the passwd lookups `setpriv` makes), not by Popen's `user=`, which would make CPython fork()
the whole service process instead of vfork(). Inside the sandbox the code sees uid 1000, an empty
network namespace, a read-only /usr, a private /tmp and /proc, and the run's workspace at
/workspace as the only writable host directory.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from pathlib import Path

from autobots.config import Settings
from autobots.sandbox._common import BackendKind, BoundedOutput, Outcome
from autobots.sandbox._subprocess import run_subprocess
from autogen_core import CancellationToken

HOST_UID_BASE = 2_100_000
SANDBOX_UID = 1000
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_FILE_SIZE_LIMIT = 1 << 30
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/ssl/certs")


def bwrap_args(workspace: Path | None, *, network: bool) -> list[str]:
    """The bubblewrap command line (without the program) for a sandbox bound to `workspace`."""
    args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--new-session", "--cap-drop", "ALL", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID),
            "--hostname", "sandbox", "--ro-bind", "/usr", "/usr"]
    if network:
        args.append("--share-net")
    for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    if network:
        args += ["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    if workspace is not None:
        args += ["--bind", str(workspace), "/workspace", "--chdir", "/workspace"]
    # The new root is a tmpfs bwrap builds; once every mount point exists, make it read-only too.
    args += ["--remount-ro", "/"]
    args += ["--clearenv", "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOME", "/tmp",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONUNBUFFERED", "1",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return args


def prlimit_args(settings: Settings, *, timeout_s: float, host_uid: int | None) -> list[str]:
    """`prlimit` options: address space, process count, CPU seconds (a backstop), file size, no cores."""
    nproc = settings.sandbox_pids_limit
    if host_uid is None:
        nproc += _processes_of(os.getuid())
    return ["prlimit", f"--as={settings.sandbox_memory_mb * 1024 * 1024}", f"--nproc={nproc}",
            f"--cpu={math.ceil(timeout_s) + 5}", f"--fsize={_FILE_SIZE_LIMIT}", "--core=0", "--"]


def drop_args(host_uid: int | None) -> list[str]:
    """A prefix that switches to the sandbox host uid and gid with no groups (only when running as root)."""
    if host_uid is None:
        return []
    return ["unshare", f"--setgid={host_uid}", f"--setuid={host_uid}", "--"]


class ProcessRunner:
    """Runs commands inside bubblewrap for one run's workspace.

    Args:
        workspace: Host directory bound at /workspace.
        settings: Limits (`sandbox_memory_mb`, `sandbox_pids_limit`).
        host_uid: Unprivileged host uid to run as when the service is root, else None.
        network: Share the host network namespace (only when the settings allow it).
    """

    kind: BackendKind = "process"

    def __init__(self, workspace: Path, *, settings: Settings, host_uid: int | None, network: bool) -> None:
        self.workspace = workspace
        self._settings = settings
        self._host_uid = host_uid
        self._network = network
        self._prepared = False

    async def prepare(self) -> None:
        """Hands the workspace to the host uid once: what the sandbox writes later is already its own."""
        if not self._prepared:
            await asyncio.to_thread(_prepare_workspace, self.workspace, self._host_uid)
            self._prepared = True

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome:
        command = [
            *drop_args(self._host_uid),
            *prlimit_args(self._settings, timeout_s=timeout_s, host_uid=self._host_uid),
            *bwrap_args(self.workspace, network=self._network),
            "--",
            *argv,
        ]
        return await run_subprocess(
            command,
            cwd=str(self.workspace),
            # Only for unshare, prlimit and bwrap (bwrap --clearenv sets the sandbox's own); without LANG
            # they skip loading the locale.
            env={"PATH": SANDBOX_PATH},
            timeout_s=timeout_s,
            output=output,
            cancellation_token=cancellation_token,
        )

    async def close(self) -> None:
        """Nothing outlives an execution: the pid namespace dies with bwrap."""


def _prepare_workspace(workspace: Path, host_uid: int | None) -> None:
    """Creates the workspace and hands everything in it to the sandbox host uid."""
    workspace.mkdir(parents=True, exist_ok=True)
    if host_uid is None:
        return
    os.chown(workspace, host_uid, host_uid)
    workspace.chmod(0o750)
    for base, dirs, files in os.walk(workspace):
        for name in dirs + files:
            os.chown(os.path.join(base, name), host_uid, host_uid, follow_symlinks=False)


def _processes_of(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count
