"""Sandbox timings (its own process): autobots.sandbox executors vs raw `docker exec` / `docker run` / `bwrap`.

    python -m bench.sandbox_run --workdir DIR --repeats N

Prints one JSON line. Code under test: a one-line python program. Docker: the first execution of a run
(a container taken from the warm pool) and warm executions (same executor, measured once the pool has
been topped up again, so no container is being created meanwhile) through SandboxExecutor, against
`docker run --rm` and `docker exec` into a running container of the same image. Process: the first
and warm executions through SandboxExecutor against `bwrap` with the same arguments
(autobots.sandbox._process.bwrap_args), without prlimit or the uid switch.

Each raw `docker exec` / `bwrap` sample is taken right after a warm execution, so whatever slows the
machine for a moment slows both sides.

Two more baselines are reported for reference, not for the targets: `raw_exec_api`, the same exec
made in-process through the docker SDK (exec_create, exec_start, exec_inspect: no CLI process to
start), and `raw_bwrap_full`, the whole command line the process backend runs (uid switch and
prlimit included) when the bench runs as root.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

CODE = "print(sum(range(1000)))"


def timed_cmd(argv: list[str], timeout_s: float = 60, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "499500" not in done.stdout:
        raise RuntimeError(f"{argv[:3]} failed: {done.returncode} {done.stdout[-300:]} {done.stderr[-300:]}")
    return elapsed


def docker_ok(image: str) -> str | None:
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    done = subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        return f"docker engine unreachable or image {image} missing (`python -m autobots sandbox build`)"
    return None


async def wait_pool(manager: Any, size: int, timeout_s: float = 60) -> None:
    backend = getattr(manager, "_docker", None)
    deadline = time.monotonic() + timeout_s
    while backend is not None and len(getattr(backend, "_pool", [])) < size and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


async def executor_times(manager: Any, kind: str, repeats: int, pool_size: int,
                         raw_sample: Callable[[], float]) -> dict[str, list[float]]:
    """First executions of `repeats` runs, and `repeats` warm executions of one run, each warm one followed at
    once by a raw sample: a disturbance of the machine weighs on both sides alike."""
    from autogen_core import CancellationToken
    from autogen_core.code_executor import CodeBlock

    first: list[float] = []
    warm: list[float] = []
    raw: list[float] = []
    for i in range(repeats):
        if kind == "docker":
            await wait_pool(manager, pool_size)
        run_id = f"bench_{kind}_{i}_{uuid.uuid4().hex[:6]}"
        executor = await manager.open_executor(run_id=run_id, kind=kind)
        try:
            for j in range(1 + (repeats if i == 0 else 0)):
                if j == 1 and kind == "docker":
                    await wait_pool(manager, pool_size)
                started = time.perf_counter()
                result = await executor.execute_code_blocks([CodeBlock(code=CODE, language="python")],
                                                            CancellationToken())
                elapsed = time.perf_counter() - started
                if result.exit_code != 0 or "499500" not in result.output:
                    raise RuntimeError(f"{kind} execution failed: {result.exit_code} {result.output[-300:]}")
                (first if j == 0 else warm).append(elapsed)
                if j > 0:
                    raw.append(raw_sample())
        finally:
            await executor.stop()
    return {"first": first, "warm": warm, "raw": raw}


def timed_api_exec(client: Any, container: str) -> float:
    """`docker exec` through the SDK: the three API calls the docker backend makes per execution."""
    api = client.api
    started = time.perf_counter()
    exec_id = api.exec_create(container, ["python3", "-c", CODE])["Id"]
    out = b"".join(api.exec_start(exec_id, stream=True))
    code = api.exec_inspect(exec_id)["ExitCode"]
    elapsed = time.perf_counter() - started
    if code != 0 or b"499500" not in out:
        raise RuntimeError(f"SDK exec failed: {code} {out[-300:]!r}")
    return elapsed


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    import docker
    from autobots.config import Settings
    from autobots.sandbox import SandboxManager
    from autobots.sandbox._process import HOST_UID_BASE, SANDBOX_PATH, bwrap_args, drop_args, prlimit_args

    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    settings = Settings(sandbox="auto", sandbox_pool_size=2, sandbox_workspace_root=str(workdir / "workspaces"))
    image = settings.sandbox_image
    manager = SandboxManager(settings)
    choice = await manager.start()
    out["available"] = sorted(choice.available)
    try:
        reason = docker_ok(image)
        if reason is None and "docker" in choice.available:
            name = f"autobots-bench-{uuid.uuid4().hex[:8]}"
            subprocess.run(["docker", "run", "-d", "--rm", "--name", name, "--network", "none", image,
                            "sleep", "600"], capture_output=True, check=True, timeout=60)
            try:
                exec_argv = ["docker", "exec", name, "python3", "-c", CODE]
                timed_cmd(exec_argv)  # warm-up
                ex = await executor_times(manager, "docker", args.repeats, settings.sandbox_pool_size,
                                          raw_sample=lambda: timed_cmd(exec_argv))
                raw_exec = ex["raw"]
                client = docker.from_env()
                try:
                    raw_exec_api = [timed_api_exec(client, name) for _ in range(args.repeats)]
                finally:
                    client.close()
            finally:
                subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60, check=False)
            await wait_pool(manager, settings.sandbox_pool_size)  # no container being created meanwhile
            raw_run = [timed_cmd(["docker", "run", "--rm", "--network", "none", image, "python3", "-c", CODE])
                       for _ in range(args.repeats)]
            out["docker"] = {"first": ex["first"], "warm": ex["warm"], "raw_run": raw_run, "raw_exec": raw_exec,
                             "raw_exec_api": raw_exec_api}
        else:
            out["docker"] = {"skipped": reason or f"docker not available to the sandbox: {choice.reason}"}
        if shutil.which("bwrap") and "process" in choice.available:
            # The docker pool refills after its executors stopped: containers being created would slow both sides.
            await wait_pool(manager, settings.sandbox_pool_size)
            space = workdir / "raw-bwrap"
            space.mkdir(exist_ok=True)
            argv = [*bwrap_args(space, network=False), "--", "python3", "-c", CODE]
            timed_cmd(argv)
            ex = await executor_times(manager, "process", args.repeats, 0, raw_sample=lambda: timed_cmd(argv))
            out["process"] = {"first": ex["first"], "warm": ex["warm"], "raw_bwrap": ex["raw"]}
            if os.geteuid() == 0:
                os.chown(space, HOST_UID_BASE, HOST_UID_BASE)
                full = [*drop_args(HOST_UID_BASE), *prlimit_args(settings, timeout_s=60, host_uid=HOST_UID_BASE),
                        *argv]
                env = {"PATH": SANDBOX_PATH}  # what ProcessRunner passes
                timed_cmd(full, env=env)
                out["process"]["raw_bwrap_full"] = [timed_cmd(full, env=env) for _ in range(args.repeats)]
        else:
            out["process"] = {"skipped": "bubblewrap not installed or not usable here"}
    finally:
        await manager.stop()
    for section in ("docker", "process"):
        for key, values in list(out[section].items()):
            if isinstance(values, list):
                out[section][f"{key}_median"] = statistics.median(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
