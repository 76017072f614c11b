"""The `process` backend: bubblewrap namespaces plus rlimits, no container engine needed.

When the service runs as root, every sandboxed process runs under a dedicated unprivileged host
uid, one per run and unique across the service's processes (`_uids.UidAllocator`): RLIMIT_NPROC is not
enforced for root, even inside a user namespace, so this is what contains a fork bomb, and a uid of its own
is what keeps another run's processes from counting against it. The switch is made by util-linux
`unshare --setgid --setuid` with no namespace flags (it drops the groups and sets gid and uid, with
none of the passwd lookups `setpriv` makes), not by Popen's `user=`, which would make CPython fork()
the whole service process instead of vfork(). Inside the sandbox the code sees uid 1000, an empty
network namespace, a read-only /usr, a private /proc, a read-only /dev, a /tmp and a /dev/shm of
`sandbox_tmpfs_mb` each (without a size, a tmpfs may take half the host's memory, and nothing counts it
against the sandbox's limits), and the run's workspace at /workspace as the only writable host directory.

A fresh sandbox announces that it is set up before it starts the code (`START_SHIM`): a bubblewrap that
failed (`Creating new namespace failed: Resource temporarily unavailable`, when the uid's processes are at
RLIMIT_NPROC) reports a start failure, retried by the executor, instead of output the code never wrote.
A seccomp filter (`_seccomp`) refuses System V shared memory and message queues, memory no limit here counts.

Each run's executor keeps one resident sandbox: bubblewrap with the sandbox agent (`_agent_script.py`) as
PID 1 of its pid namespace. It is started once the run's first execution is over (that one runs in a fresh
sandbox of its own, so nothing waits for the resident one), and every later execution is handed to the agent
over its socket in the workspace: a fork instead of a new sandbox. The agent kills everything an execution
leaves when it ends, so executions of a run share only the workspace and /tmp, as in a docker container. If
the agent does not answer (the sandbox died, its socket is gone), the resident sandbox is killed, that
execution runs in a fresh sandbox and a new resident one is started; if one does not come up at all, every
execution gets a fresh sandbox, whose pid namespace dies with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from autobots.config import Settings
from autobots.sandbox._agent import AGENT_SCRIPT, AgentExecution, agent_listening, remove_agent_socket
from autobots.sandbox._common import (
    CODE_DIR,
    MIB,
    START_SHIM,
    BackendKind,
    BoundedOutput,
    Outcome,
    StartGate,
    quota_bytes,
    tmpfs_bytes,
)
from autobots.sandbox._seccomp import filter_fd
from autobots.sandbox._subprocess import run_subprocess
from autobots.sandbox._uids import HOST_UID_BASE as HOST_UID_BASE  # the benchmark's raw sample runs as it
from autobots.sandbox._uids import UidAllocator, UidLease
from autobots.sandbox._watch import supervise
from autogen_core import CancellationToken

logger = logging.getLogger(__name__)

SANDBOX_UID = 1000
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives", "/etc/ssl/certs")
# The resident sandbox's own processes count against RLIMIT_NPROC: bubblewrap outside and the agent inside.
_RESIDENT_PROCESSES = 2
_REAP_S = 5.0
# A resident sandbox that fails to come up this many times is given up on: every execution gets a fresh one.
_RESIDENT_ATTEMPTS = 3


def bwrap_args(workspace: Path | None, *, network: bool, tmpfs_size: int | None = None) -> list[str]:
    """The bubblewrap command line (without the program) for a sandbox bound to `workspace`, with a /tmp and a
    /dev/shm of `tmpfs_size` bytes each (by default, the default `sandbox_tmpfs_mb`)."""
    if tmpfs_size is None:
        tmpfs_size = Settings.model_fields["sandbox_tmpfs_mb"].default * MIB
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
    size = str(tmpfs_size)
    # /dev is a tmpfs too, writable by the sandbox user and without a size: read-only once /dev/shm is mounted.
    args += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
             "--size", size, "--tmpfs", "/tmp"]
    if workspace is not None:
        args += ["--bind", str(workspace), "/workspace", "--chdir", "/workspace"]
    # The new root is a tmpfs bwrap builds; once every mount point exists, make it read-only too.
    args += ["--remount-ro", "/"]
    args += ["--clearenv", "--setenv", "PATH", SANDBOX_PATH, "--setenv", "HOME", "/tmp",
             "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONUNBUFFERED", "1",
             "--setenv", "PYTHONDONTWRITEBYTECODE", "1"]
    return args


def prlimit_args(settings: Settings, *, timeout_s: float, host_uid: int | None, extra_processes: int = 0) -> list[str]:
    """`prlimit` options: address space, process count, CPU seconds (a backstop), file size (the workspace
    quota: no file may outgrow it), no cores."""
    nproc = settings.sandbox_pids_limit + extra_processes
    if host_uid is None:
        nproc += _processes_of(os.getuid())
    return ["prlimit", f"--as={settings.sandbox_memory_mb * 1024 * 1024}", f"--nproc={nproc}",
            f"--cpu={math.ceil(timeout_s) + 5}", f"--fsize={quota_bytes(settings)}", "--core=0", "--"]


def drop_args(host_uid: int | None) -> list[str]:
    """A prefix that switches to the sandbox host uid and gid with no groups (only when running as root)."""
    if host_uid is None:
        return []
    return ["unshare", f"--setgid={host_uid}", f"--setuid={host_uid}", "--"]


class ProcessRunner:
    """Runs commands inside bubblewrap for one run's workspace: through its resident sandbox's agent, else in
    a fresh sandbox per command.

    Args:
        workspace: Host directory bound at /workspace.
        settings: Limits (`sandbox_memory_mb`, `sandbox_pids_limit`, `sandbox_tmpfs_mb`, the workspace quota).
        uids: Where the run's unprivileged host uid comes from when the service is root, else None (the
            sandbox then runs as the service's own uid).
        network: Share the host network namespace (only when the settings allow it).
    """

    kind: BackendKind = "process"

    def __init__(self, workspace: Path, *, settings: Settings, uids: UidAllocator | None, network: bool) -> None:
        self.workspace = workspace
        self._settings = settings
        self._uids = uids
        self._uid: UidLease | None = None
        self._network = network
        self._prepared = False
        self._resident: subprocess.Popen[bytes] | None = None
        self._starting: asyncio.Future[None] | None = None
        self._resident_failures = 0
        self.executions_by_agent = 0
        self.executions_by_sandbox = 0

    @property
    def host_uid(self) -> int | None:
        """The host uid the run's sandboxes run as (None: the service's own, or none taken yet)."""
        return None if self._uid is None else self._uid.uid

    async def prepare(self) -> None:
        """Takes a host uid for the run and hands the workspace to it, once: what the sandbox writes later is
        already its own.

        Raises:
            SandboxError: No host uid is free.
        """
        if self._uids is not None and self._uid is None:
            self._uid = await asyncio.to_thread(self._uids.acquire)
            self._prepared = False
        if not self._prepared:
            await asyncio.to_thread(_prepare_workspace, self.workspace, self.host_uid)
            self._prepared = True

    def _command(self, argv: Sequence[str], *, timeout_s: float, seccomp_fd: int, agent: bool = False) -> list[str]:
        """The command line running `argv` in a new sandbox (the resident one when `agent`), whose bubblewrap
        reads its seccomp filter from `seccomp_fd`."""
        bwrap = bwrap_args(self.workspace, network=self._network, tmpfs_size=tmpfs_bytes(self._settings))
        bwrap += ["--seccomp", str(seccomp_fd)]
        if agent:
            # The agent is the namespace's PID 1: code cannot kill it, and when it dies the namespace goes.
            bwrap.append("--as-pid-1")
        else:
            argv = [*START_SHIM, *argv]
        # Every process of the run's uid counts against RLIMIT_NPROC, the resident sandbox's included.
        limits = prlimit_args(self._settings, timeout_s=timeout_s, host_uid=self.host_uid,
                              extra_processes=_RESIDENT_PROCESSES)
        return [*drop_args(self.host_uid), *limits, *bwrap, "--", *argv]

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome:
        await self.prepare()
        agent = await self._connect()
        if agent is None:
            return await self._run_in_fresh_sandbox(argv, timeout_s=timeout_s, output=output,
                                                    cancellation_token=cancellation_token)
        self.executions_by_agent += 1
        limit = math.ceil(timeout_s) + 2
        try:
            outcome = await supervise(agent.start(argv, limit_s=limit, output=output), timeout_s=timeout_s,
                                      cancellation_token=cancellation_token, kill=agent.stop)
        finally:
            if not agent.killed_all:
                # What the execution left may still run: the sandbox goes, and a new one is started.
                await self._stop_resident()
        if agent.start_error is not None:
            outcome.start_error = agent.start_error
        return outcome

    async def _run_in_fresh_sandbox(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome:
        self.executions_by_sandbox += 1
        gate = StartGate(output)
        seccomp = filter_fd()
        try:
            outcome = await run_subprocess(
                self._command(argv, timeout_s=timeout_s, seccomp_fd=seccomp),
                cwd=str(self.workspace),
                # Only for unshare, prlimit and bwrap (bwrap --clearenv sets the sandbox's own); without LANG
                # they skip loading the locale.
                env={"PATH": SANDBOX_PATH},
                timeout_s=timeout_s,
                output=gate,
                cancellation_token=cancellation_token,
                pass_fds=(seccomp,),
            )
        finally:
            os.close(seccomp)
            # Started once this execution is over, so as not to compete with it for the CPU: the next one
            # normally comes after a model turn, by which time the resident sandbox is up.
            if self._resident is None and self._starting is None and self._resident_failures < _RESIDENT_ATTEMPTS:
                self._starting = asyncio.ensure_future(self._start_resident(timeout_s))
        if not gate.started and not (outcome.timed_out or outcome.cancelled):
            outcome.start_error = gate.preamble() or f"the sandbox exited with status {outcome.exit_code}"
        return outcome

    async def _connect(self) -> AgentExecution | None:
        """A connection to the resident sandbox's agent, or None when it is not up (yet, or any more).

        Nothing waits for the resident sandbox: the run's first execution, and any that finds the resident
        sandbox starting or gone, runs in a sandbox of its own; a new resident one is started after it.
        """
        if self._starting is not None:
            if not self._starting.done():
                return None
            starting, self._starting = self._starting, None
            with contextlib.suppress(BaseException):
                starting.result()
        if self._resident is not None and self._resident.poll() is None:
            agent = await AgentExecution.connect(self.workspace)
            if agent is not None:
                return agent
            await self._stop_resident()
        return None

    async def _start_resident(self, timeout_s: float) -> None:
        try:
            await self.prepare()
            await asyncio.to_thread(remove_agent_socket, self.workspace)
            seccomp = filter_fd()
            try:
                command = self._command(["python3", "-c", AGENT_SCRIPT], timeout_s=timeout_s, seccomp_fd=seccomp,
                                        agent=True)
                self._resident = _spawn(command, cwd=str(self.workspace), pass_fds=(seccomp,))
            finally:
                os.close(seccomp)
            listening = await agent_listening(self.workspace)
        except OSError:
            logger.warning("could not start the resident sandbox of %s", self.workspace.name, exc_info=True)
            listening = False
        if not listening:
            self._resident_failures += 1
            logger.warning("the resident sandbox of %s did not come up (%d of %d tries); until it does, each "
                           "execution gets a sandbox of its own", self.workspace.name, self._resident_failures,
                           _RESIDENT_ATTEMPTS)
            await self._stop_resident()

    async def resident_ready(self) -> bool:
        """Waits for the resident sandbox being started, if one is; whether one is up."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._starting)
        return self._resident is not None and self._resident.poll() is None

    async def _stop_resident(self) -> None:
        """Kills the resident sandbox (bubblewrap's process group; the agent dies with bubblewrap)."""
        resident, self._resident = self._resident, None
        if resident is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(resident.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(resident.wait, _REAP_S)

    async def close(self) -> None:
        """Stops the resident sandbox (nothing else outlives an execution) and gives the host uid back."""
        starting, self._starting = self._starting, None
        if starting is not None:
            with contextlib.suppress(Exception):
                await starting
        await self._stop_resident()
        uid, self._uid = self._uid, None
        if uid is not None:
            uid.release()


def _spawn(command: list[str], *, cwd: str, pass_fds: Sequence[int]) -> subprocess.Popen[bytes]:
    """Starts the resident sandbox in a session of its own. Called on the event loop: Popen returns once the
    child has exec'd (vfork: about a millisecond)."""
    return subprocess.Popen(command, cwd=cwd, env={"PATH": SANDBOX_PATH}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            pass_fds=tuple(pass_fds))


def _prepare_workspace(workspace: Path, host_uid: int | None) -> None:
    """Creates the workspace and hands everything in it to the sandbox host uid."""
    workspace.mkdir(parents=True, exist_ok=True)
    # The agent listens in the code directory: it must be the sandbox's to write, not the service's.
    with contextlib.suppress(FileExistsError):
        (workspace / CODE_DIR).mkdir()
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
