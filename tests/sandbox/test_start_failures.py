"""A sandbox that fails to start the code: retried, and if it never starts, a sandbox error, never output.

The bubblewrap failures are real: processes of the run's host uid fill its RLIMIT_NPROC, so bubblewrap's
clone() fails with EAGAIN ("Creating new namespace failed: Resource temporarily unavailable"), and so does
the resident sandbox agent's fork. The docker ones too: a container killed under the run, a limit the
engine refuses.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import docker
import pytest
from autobots.runs._errors import classify
from autobots.sandbox import SandboxError, SandboxExecutor
from autobots.sandbox._common import STARTED, BoundedOutput, StartGate
from autobots.sandbox._docker import DockerRunner
from autobots.sandbox._process import ProcessRunner
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeResult

if TYPE_CHECKING:
    from tests.support.sandbox import Box, MakeBox

PIDS_LIMIT = 8


def processes_running_as(uid: int) -> int:
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                count += any(line.split()[1:2] == [str(uid).encode()] for line in status if line.startswith(b"Uid:"))
        except OSError:
            continue
    return count


async def run(executor: SandboxExecutor, code: str) -> CodeResult:
    return await executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken())


@contextmanager
def processes_of(uid: int, *, seconds: float, count: int = PIDS_LIMIT + 4) -> Iterator[None]:
    """`count` processes of host uid `uid` for `seconds` (more than its sandboxes' RLIMIT_NPROC allows)."""
    sleepers = [subprocess.Popen(["unshare", f"--setgid={uid}", f"--setuid={uid}", "--", "sleep", str(seconds)])
                for _ in range(count)]
    # Reaped as soon as they exit: a zombie still counts against RLIMIT_NPROC.
    for sleeper in sleepers:
        threading.Thread(target=sleeper.wait, daemon=True).start()
    try:
        deadline = time.monotonic() + 2
        while processes_running_as(uid) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        yield
    finally:
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


@pytest.fixture
def process_box(make_box: MakeBox, request: pytest.FixtureRequest) -> MakeBox:
    """`make_box` for the process backend only (its agent's way and its fresh sandboxes' way), when root."""
    if not request.node.callspec.params["make_box"].startswith("process"):
        pytest.skip("bubblewrap only")
    if os.geteuid() != 0:
        pytest.skip("the sandbox runs as a uid of its own only when the service is root")
    return make_box


async def warmed_up(box: Box) -> tuple[SandboxExecutor, int]:
    """An executor that ran once (so it holds its host uid, and its resident sandbox is up when `warm`)."""
    executor = await box.executor("starts", timeout_s=10)
    first = await run(executor, "print('first')")
    assert (first.exit_code, first.output) == (0, "first\n")
    runner = executor.runner
    assert isinstance(runner, ProcessRunner) and runner.host_uid is not None
    return executor, runner.host_uid


class TestProcessStartFailures:
    async def test_a_transient_failure_is_retried_and_never_shows(self, process_box: MakeBox) -> None:
        box = await process_box(sandbox_pids_limit=PIDS_LIMIT)
        executor, uid = await warmed_up(box)
        with processes_of(uid, seconds=0.6):
            result = await run(executor, "print('ran')")
        assert (result.exit_code, result.output) == (0, "ran\n")
        assert executor.start_failures >= 1

    async def test_a_lasting_failure_is_a_sandbox_error(self, process_box: MakeBox) -> None:
        box = await process_box(sandbox_pids_limit=PIDS_LIMIT)
        executor, uid = await warmed_up(box)
        with processes_of(uid, seconds=30), pytest.raises(SandboxError) as caught:
            await run(executor, "print('never')")
        assert caught.value.code == "sandbox_error"
        assert caught.value.message.startswith("the sandbox could not start the code (3 tries): ")
        assert "Resource temporarily unavailable" in caught.value.message
        assert executor.start_failures == 3
        after = await run(executor, "print('back')")
        assert (after.exit_code, after.output) == (0, "back\n")


class TestDockerStartFailures:
    @pytest.fixture
    def docker_box(self, make_box: MakeBox, request: pytest.FixtureRequest) -> MakeBox:
        if not request.node.callspec.params["make_box"].startswith("docker"):
            pytest.skip("docker only")
        return make_box

    async def test_a_container_that_died_is_replaced(self, docker_box: MakeBox) -> None:
        box = await docker_box()
        executor = await box.executor("died", timeout_s=10)
        assert (await run(executor, "open('kept.txt', 'w').write('x')")).exit_code == 0
        runner = executor.runner
        assert isinstance(runner, DockerRunner) and runner.container is not None
        dead = runner.container.id
        client = docker.from_env()
        try:
            client.containers.get(dead).kill()
        finally:
            client.close()
        result = await run(executor, "print(open('kept.txt').read())")
        assert (result.exit_code, result.output) == (0, "x\n")
        assert executor.start_failures == 1
        assert runner.container is not None and runner.container.id != dead

    async def test_a_container_the_engine_refuses_is_a_sandbox_error(self, docker_box: MakeBox) -> None:
        box = await docker_box(sandbox_memory_mb=4)  # below the engine's minimum (6 MB)
        executor = await box.executor("refused")
        with pytest.raises(SandboxError) as caught:
            await run(executor, "print('never')")
        assert caught.value.message.startswith("the sandbox container could not be started: 400 Client Error")
        assert "Minimum memory limit allowed is 6MB" in caught.value.message


class TestStartGate:
    def test_what_comes_before_the_start_is_the_sandboxs_and_after_it_the_codes(self) -> None:
        output = BoundedOutput(1000)
        gate = StartGate(output)
        stream = b"bwrap: a warning\n" + STARTED + b"the code's own output\n"
        for at in range(0, len(stream), 3):  # the marker arrives split across reads
            gate.feed(stream[at:at + 3])
        assert gate.started
        assert gate.preamble() == "bwrap: a warning"
        assert output.text() == "the code's own output\n"

    def test_without_the_start_nothing_reaches_the_output(self) -> None:
        output = BoundedOutput(1000)
        gate = StartGate(output)
        gate.feed(b"bwrap: Creating new namespace failed: Resource temporarily unavailable\n")
        assert not gate.started
        assert gate.preamble() == "bwrap: Creating new namespace failed: Resource temporarily unavailable"
        assert output.text() == ""


class TestRunError:
    def test_a_sandbox_error_fails_the_run_as_a_sandbox_error(self) -> None:
        assert classify(SandboxError("the sandbox could not start the code (3 tries): x")) == (
            "sandbox_error", "the sandbox could not start the code (3 tries): x")

    def test_as_autogen_reraises_it(self) -> None:
        wrapped = RuntimeError("SandboxError: the sandbox could not start the code (3 tries): x\nTraceback: ...")
        assert classify(wrapped) == ("sandbox_error", "the sandbox failed to start the code")
