"""Execution and escape attempts against the real docker and bubblewrap backends."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from autobots.sandbox._uids import HOST_UID_BASE
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock

if TYPE_CHECKING:
    from autobots.sandbox import SandboxExecutor
    from autogen_ext.code_executors._common import CommandLineCodeResult

    from tests.support.sandbox import Box, MakeBox


COUNT_SLEEPERS = """import os
count = 0
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            count += f.read().startswith(b'sleep')
    except OSError:
        pass
print(count)"""


FILL_TMPFS = """import errno, os
for path in ('/tmp/fill', '/dev/shm/fill'):
    try:
        with open(path, 'wb') as f:
            for _ in range(24):
                f.write(b'x' * 1024 * 1024)
        print(path, 'written')
    except OSError as exc:
        print(path, errno.errorcode[exc.errno])
    finally:
        if os.path.exists(path):
            os.remove(path)
try:
    open('/dev/fill', 'wb').close()
    print('/dev written')
except OSError:
    print('/dev refused')
"""

SYSTEM_V_IPC = """import ctypes, ctypes.util, errno
libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
for call, args in (('shmget', (0, 128 * 1024 * 1024, 0o1600)), ('msgget', (0, 0o1600))):
    ok = getattr(libc, call)(*args) >= 0
    print(call, 'allowed' if ok else errno.errorcode[ctypes.get_errno()])
"""

SHOW_ENVIRONMENT = """import os
print(sorted(os.environ))
for pid in ['self'] + sorted(filter(str.isdigit, os.listdir('/proc'))):
    try:
        with open(f'/proc/{pid}/environ', 'rb') as f:
            print(pid, f.read())
    except OSError as exc:
        print(pid, type(exc).__name__)
"""


async def run_block(executor: SandboxExecutor, code: str, language: str) -> CommandLineCodeResult:
    return await executor.execute_code_blocks([CodeBlock(code, language)], CancellationToken())


def make_world_readable(directory: Path, file: Path, text: str) -> None:
    file.write_text(text)
    directory.chmod(0o755)
    file.chmod(0o644)


class TestExecute:
    async def test_python(self, box: Box) -> None:
        result = await box.run("import os\nprint('hello', os.getuid(), os.getcwd())")
        assert (result.exit_code, result.output) == (0, "hello 1000 /workspace\n")

    async def test_files_belong_to_an_unprivileged_host_uid(self, box: Box) -> None:
        result = await box.run("open('mine.txt', 'w').write('x')")
        assert result.exit_code == 0
        owner = await asyncio.to_thread(os.stat, box.manager.workspace_path("run-1") / "mine.txt")
        if box.kind == "docker":
            assert (owner.st_uid, owner.st_gid) == (1000, 1000)
        elif os.geteuid() == 0:
            assert owner.st_uid >= HOST_UID_BASE
            assert owner.st_gid == owner.st_uid
        else:
            assert (owner.st_uid, owner.st_gid) == (os.getuid(), os.getgid())

    async def test_shell(self, box: Box) -> None:
        result = await box.run("echo one; echo two >&2; pwd", "sh")
        assert result.exit_code == 0
        assert result.output.split() == ["one", "two", "/workspace"]

    async def test_blocks_stop_at_first_failure(self, box: Box) -> None:
        executor = await box.executor()
        blocks = [CodeBlock("print('a')", "py"), CodeBlock("exit 3", "bash"), CodeBlock("print('never')", "python")]
        result = await executor.execute_code_blocks(blocks, CancellationToken())
        assert (result.exit_code, result.output) == (3, "a\n")

    async def test_unsupported_language(self, box: Box) -> None:
        result = await box.run("console.log(1)", "javascript")
        assert result.exit_code == 1
        assert "unsupported language 'javascript'" in result.output

    async def test_written_file_is_listed_and_readable(self, box: Box) -> None:
        code = "import os\nos.makedirs('out', exist_ok=True)\nopen('out/a.txt', 'w').write('hello world!')"
        assert (await box.run(code, run_id="files")).exit_code == 0
        files = box.manager.list_files("files")
        assert [(f["path"], f["size"]) for f in files] == [("out/a.txt", 12)]
        assert isinstance(files[0]["modified_at"], int)
        assert box.manager.read_file("files", "out/a.txt") == b"hello world!"

    async def test_files_persist_across_executions(self, box: Box) -> None:
        await box.run("open('state.txt', 'w').write('1')", run_id="twice")
        result = await box.run("print(open('state.txt').read())", run_id="twice")
        assert (result.exit_code, result.output) == (0, "1\n")


class TestLimits:
    async def test_tmp_and_shm_are_capped(self, make_box: MakeBox) -> None:
        # 24 MiB into a 16 MiB /tmp and /dev/shm: the filesystem is full (ENOSPC), no memory goes past the cap.
        box = await make_box(sandbox_tmpfs_mb=16)
        result = await box.run(FILL_TMPFS, timeout_s=10)
        assert (result.exit_code, result.output.splitlines()) == (0, ["/tmp/fill ENOSPC", "/dev/shm/fill ENOSPC",
                                                                      "/dev refused"])

    async def test_tmp_is_never_larger_than_the_memory_limit(self, make_box: MakeBox) -> None:
        box = await make_box(sandbox_memory_mb=96, sandbox_tmpfs_mb=1024)
        result = await box.run(FILL_TMPFS.replace("range(24)", "range(120)"), timeout_s=20)
        # Bubblewrap: the 96 MiB /tmp is full. Docker: that, or the memory cgroup (which counts tmpfs) kills it.
        assert "/tmp/fill written" not in result.output
        assert "/dev/shm/fill written" not in result.output

    async def test_system_v_shared_memory_is_refused(self, box: Box) -> None:
        # Its segments would hold host memory that no limit of a bubblewrap sandbox counts (docker's cgroup does).
        if box.kind != "process":
            pytest.skip("docker counts System V memory against the container's memory limit")
        result = await box.run(SYSTEM_V_IPC)
        assert (result.exit_code, result.output) == (0, "shmget EPERM\nmsgget EPERM\n")

    async def test_server_environment_does_not_reach_the_sandbox(
        self, monkeypatch: pytest.MonkeyPatch, make_box: MakeBox
    ) -> None:
        canaries = {"AUTOBOTS_TEST_CANARY": f"canary-{uuid.uuid4().hex}",
                    "OPENAI_API_KEY": f"sk-canary-{uuid.uuid4().hex}"}
        for name, value in canaries.items():
            monkeypatch.setenv(name, value)
        box = await make_box()
        result = await box.run(SHOW_ENVIRONMENT)
        assert result.exit_code == 0
        lines = result.output.splitlines()
        assert lines[1].startswith("self b'") and "PATH=" in lines[1]  # the sandbox's own environ was readable
        assert any(line.startswith("1 b'") for line in lines)  # and so was its first process's
        for name, value in canaries.items():
            assert name not in result.output
            assert value not in result.output


class TestEscapes:
    async def test_network_is_unreachable(self, box: Box) -> None:
        connections: list[object] = []

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(writer.get_extra_info("peername"))
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        code = (
            "import socket\n"
            f"for host, port in (('127.0.0.1', {port}), ('1.1.1.1', 53)):\n"
            "    try:\n"
            "        socket.create_connection((host, port), timeout=1).close()\n"
            "        print(host, 'connected')\n"
            "    except OSError as exc:\n"
            "        print(host, 'blocked', type(exc).__name__)\n"
        )
        try:
            result = await box.run(code, timeout_s=5)
        finally:
            server.close()
            await server.wait_closed()
        assert result.exit_code == 0
        lines = result.output.splitlines()
        assert [line.split()[:2] for line in lines] == [["127.0.0.1", "blocked"], ["1.1.1.1", "blocked"]]
        assert connections == []

    async def test_host_file_outside_workspace_is_invisible(self, box: Box) -> None:
        secret_dir = Path(tempfile.mkdtemp(prefix="autobots-secret-"))
        secret = secret_dir / "secret.txt"
        make_world_readable(secret_dir, secret, "TOPSECRET")
        code = (
            "try:\n"
            f"    print(open({str(secret)!r}).read())\n"
            "except OSError as exc:\n"
            "    print('denied', type(exc).__name__)\n"
        )
        try:
            result = await box.run(code)
        finally:
            shutil.rmtree(secret_dir)
        assert "TOPSECRET" not in result.output
        assert result.output.startswith("denied FileNotFoundError")

    async def test_writes_outside_workspace_fail(self, box: Box) -> None:
        marker = f"autobots-{uuid.uuid4().hex}"
        code = (
            "for path in ('/etc/x', '/usr/x', '/x', '/tmp/" + marker + "'):\n"
            "    try:\n"
            "        open(path, 'w').write('x')\n"
            "        print(path, 'written')\n"
            "    except OSError as exc:\n"
            "        print(path, 'refused')\n"
        )
        result = await box.run(code)
        assert result.output.split("\n")[:4] == [
            "/etc/x refused",
            "/usr/x refused",
            "/x refused",
            f"/tmp/{marker} written",
        ]
        assert not await asyncio.to_thread(os.path.exists, os.path.join("/tmp", marker))

    async def test_a_symlink_planted_as_the_code_directory_is_not_written_through(self, box: Box) -> None:
        target = Path(tempfile.mkdtemp(prefix="autobots-target-"))
        await asyncio.to_thread(target.chmod, 0o777)
        executor = await box.executor()
        plant = (f"import os\nos.rename('.autobots', 'moved')\nos.symlink({str(target)!r}, '.autobots')\n"
                 "print('planted')")
        try:
            planted = await run_block(executor, plant, "python")
            assert (planted.exit_code, planted.output) == (0, "planted\n")
            after = await run_block(executor, "print('next')", "python")
            written = await asyncio.to_thread(os.listdir, target)
        finally:
            shutil.rmtree(target)
        assert written == []
        assert after.exit_code == 1
        assert after.output.startswith("sandbox error: could not write the code file")

    async def test_python_fork_bomb_is_contained(self, box: Box) -> None:
        started = time.monotonic()
        result = await box.run("import os\nwhile True:\n    os.fork()", timeout_s=3)
        assert result.exit_code != 0
        assert time.monotonic() - started < 10
        after = await box.run("print('still fine')")
        assert (after.exit_code, after.output) == (0, "still fine\n")

    async def test_shell_fork_bomb_leaves_nothing_behind(self, box: Box) -> None:
        started = time.monotonic()
        await box.run(":(){ :|:& };:", "bash", timeout_s=3)
        assert time.monotonic() - started < 10
        count = "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]) < 8)"
        after = await box.run(count)
        assert (after.exit_code, after.output) == (0, "True\n")

    async def test_background_process_does_not_outlive_execution(self, box: Box) -> None:
        result = await box.run("(sleep 1; echo late > late.txt) >/dev/null 2>&1 &\necho started", "sh")
        assert (result.exit_code, result.output) == (0, "started\n")
        await asyncio.sleep(1.5)
        late = box.manager.workspace_path("run-1") / "late.txt"
        assert not await asyncio.to_thread(os.path.exists, late)

    async def test_background_process_is_gone_when_the_next_execution_starts(self, box: Box) -> None:
        executor = await box.executor()
        started = await run_block(executor, "sleep 30 >/dev/null 2>&1 &\necho started", "sh")
        assert (started.exit_code, started.output) == (0, "started\n")
        after = await run_block(executor, COUNT_SLEEPERS, "python")
        assert (after.exit_code, after.output) == (0, "0\n")

    async def test_background_process_is_gone_even_when_the_code_kills_its_parents(self, box: Box) -> None:
        # Every ancestor the code may signal (docker: `timeout` and the wrapper that kills leftovers).
        code = ("sleep 30 >/dev/null 2>&1 &\n"
                "p=$PPID\n"
                "while [ \"$p\" -gt 1 ]; do next=$(cut -d' ' -f4 /proc/$p/stat); kill -9 $p; p=$next; done\n"
                "echo done")
        executor = await box.executor()
        await run_block(executor, code, "sh")
        after = await run_block(executor, COUNT_SLEEPERS, "python")
        assert (after.exit_code, after.output) == (0, "0\n")

    async def test_memory_bomb_fails(self, box: Box) -> None:
        result = await box.run("b = bytearray(2 * 1024 ** 3)\nprint('allocated', len(b))", timeout_s=10)
        assert result.exit_code != 0
        assert "allocated" not in result.output
        assert "MemoryError" in result.output or result.exit_code == 137

    async def test_endless_loop_killed_at_timeout(self, box: Box) -> None:
        started = time.monotonic()
        result = await box.run("print('spinning', flush=True)\nwhile True:\n    pass", timeout_s=2)
        assert result.exit_code == 124
        assert result.output == "spinning\n[timed out after 2 s]"
        assert time.monotonic() - started < 5

    async def test_sleep_past_timeout(self, box: Box) -> None:
        started = time.monotonic()
        result = await box.run("sleep 30", "sh", timeout_s=2)
        assert (result.exit_code, result.output) == (124, "[timed out after 2 s]")
        assert time.monotonic() - started < 5

    async def test_output_flood_truncated(self, box: Box) -> None:
        limit = box.manager.settings.sandbox_output_limit_bytes
        result = await box.run("import sys\nsys.stdout.write('x' * 5_000_000)")
        assert result.exit_code == 0
        assert result.output == "x" * limit + f"\n[output truncated at {limit} bytes]"

    async def test_endless_flood_truncated_then_timed_out(self, box: Box) -> None:
        result = await box.run("while True:\n    print('y' * 1000)", timeout_s=2)
        assert result.exit_code == 124
        assert f"[output truncated at {box.manager.settings.sandbox_output_limit_bytes} bytes]" in result.output
        assert result.output.endswith("[timed out after 2 s]")

    async def test_cancellation_kills_process_tree(self, box: Box) -> None:
        executor = await box.executor("cancel", timeout_s=30)
        token = CancellationToken()
        code = "(sleep 2; echo late > late.txt) &\nsleep 30"
        task = asyncio.create_task(executor.execute_code_blocks([CodeBlock(code, "sh")], token))
        await asyncio.sleep(0.8)
        started = time.monotonic()
        token.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1.5
        await asyncio.sleep(2.5)
        assert not await asyncio.to_thread(os.path.exists, box.manager.workspace_path("cancel") / "late.txt")

    async def test_task_cancellation_kills_process(self, box: Box) -> None:
        executor = await box.executor("task-cancel", timeout_s=30)
        code = "import time\ntime.sleep(1.5)\nopen('late.txt', 'w').write('late')"
        task = asyncio.create_task(executor.execute_code_blocks([CodeBlock(code, "python")], CancellationToken()))
        await asyncio.sleep(0.8)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(1.5)
        late = box.manager.workspace_path("task-cancel") / "late.txt"
        assert not await asyncio.to_thread(os.path.exists, late)

