"""Per-turn CPU profile of the server with py-spy: where the service's CPU goes during 20-message runs.

Records the server process (`py-spy record --format raw`) while runs go one after the other, then
attributes the samples: inclusive share of our own functions (src/ = autobots) and of the libraries
they call, and a "leaf package" breakdown (which package's code was on CPU). Also writes a flame graph
(`bench/out/profile.svg`) when not in quick mode.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import Server, create_sessions, create_workflow, fmt, wait_until_started
from bench.engine import MESSAGES, post_and_wait
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.specs import two_assistants_spec

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
SRC = "src/"  # py-spy prints paths relative to sys.path entries
CATEGORIES = [  # (label, substring of the file path) — first match wins for a leaf frame
    ("autobots (src/)", SRC),
    ("sqlalchemy", "sqlalchemy/"),
    ("aiosqlite / sqlite3", "aiosqlite/"),
    ("sqlite3", "sqlite3/"),
    ("sqlmodel", "sqlmodel/"),
    ("pydantic", "pydantic"),
    ("logging", "logging/"),
    ("json", "json/"),
    ("openai SDK", "openai/"),
    ("httpx / httpcore", "httpx"),
    ("httpcore", "httpcore/"),
    ("autogen", "autogen_"),
    ("fastapi / starlette", "fastapi/"),
    ("starlette", "starlette/"),
    ("uvicorn / h11", "uvicorn/"),
    ("h11", "h11/"),
    ("asyncio", "asyncio/"),
    ("tiktoken", "tiktoken"),
]


IDLE_LEAVES = {"EpollSelector.select", "select", "Condition.wait", "Event.wait", "Queue.get", "_worker"}


def category(path: str) -> str:
    path = path.lstrip("/")
    for label, needle in CATEGORIES:
        if path.startswith(needle) or f"/{needle}" in path:
            return label
    return "other"


def root_of(frames: list[tuple[str, str]]) -> str:
    names = [func for func, _ in frames]
    if not frames:
        return "?"
    if names[0] == "Thread._bootstrap":
        return f"other thread: {frames[-1][1].split('/')[0] or '?'} (aiosqlite = SQLite work)"
    if "Handle._run" in names:
        i = names.index("Handle._run")
        if i + 1 < len(frames):
            func, file = frames[i + 1]
            return f"{func} ({file.split(':')[0]})"
        return "event loop callbacks"
    return f"event loop: {names[-1]}"


def parse_raw(path: Path) -> tuple[list[tuple[list[tuple[str, str]], int]], int]:
    stacks = []
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = []
        for raw in stack.split(";"):
            match = _FRAME.match(raw.strip())
            frames.append((match.group("func"), match.group("file")) if match else (raw, ""))
        if frames and (frames[-1][0] in IDLE_LEAVES or frames[-1][1].startswith(("threading.py", "queue.py"))):
            continue  # a thread or the event loop waiting, which py-spy's idle detection let through
        stacks.append((frames, int(count)))
        total += int(count)
    return stacks, total


def analyse(path: Path, top: int = 25) -> dict[str, Any]:
    stacks, total = parse_raw(path)
    inclusive: collections.Counter[tuple[str, str]] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    ours_leafward: collections.Counter[tuple[str, str]] = collections.Counter()
    lib_inclusive: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        for key in set(frames):
            if key[1].startswith(SRC) and not key[1].startswith("src/__main__"):
                inclusive[key] += count
        for label in {category(f) for _, f in frames}:
            lib_inclusive[label] += count
        leaf[category(frames[-1][1]) if frames else "other"] += count
        # The deepest of our frames in the stack: what of ours asked for this CPU.
        for func, file in reversed(frames):
            if file.startswith(SRC) and not file.startswith("src/__main__"):
                ours_leafward[(func, file)] += count
                break
    # What each sample was doing, by the coroutine/callback the event loop was running (below Handle._run),
    # or the thread it was on.
    roots: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        roots[root_of(frames)] += count

    def rows(counter: collections.Counter[Any]) -> list[tuple[str, float]]:
        out = []
        for key, count in counter.most_common(top):
            name = f"{key[0]} ({key[1].replace(SRC, 'src/')})" if isinstance(key, tuple) else key
            out.append((name, 100 * count / total if total else 0.0))
        return out
    return {"samples": total, "ours_inclusive": rows(inclusive), "ours_deepest": rows(ours_leafward),
            "leaf_package": rows(leaf), "by_task": rows(roots), "package_inclusive": rows(lib_inclusive)}


def record(server: Server, model_url: str, runs: int, out: Path, fmt_: str, rate: int) -> Path:
    target = out / ("profile.raw.txt" if fmt_ == "raw" else "profile.svg")
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        workflow = create_workflow(client, two_assistants_spec(model_url, max_messages=MESSAGES))
        sessions = create_sessions(client, workflow, runs + 1)
        wait_until_started(server.pid)  # the run workers' start-up is no turn's CPU
        post_and_wait(client, sessions[0], MESSAGES)  # warm-up, outside the profile
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--subprocesses", "--rate", str(rate),
                                "--format", fmt_, "--output", str(target), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=(out / f"py-spy-{fmt_}.log").open("w"))
        time.sleep(0.5)  # let py-spy attach
        started = time.perf_counter()
        for session_id in sessions[1:]:
            post_and_wait(client, session_id, MESSAGES)
        elapsed = time.perf_counter() - started
        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(timeout=10)
    if not target.exists():
        raise RuntimeError(f"py-spy wrote nothing: {(out / f'py-spy-{fmt_}.log').read_text()[-1000:]}")
    _ = elapsed
    return target


def run(quick: bool, out: Path) -> dict[str, Any]:
    title = "6. Per-turn CPU profile of the server (py-spy)"
    if shutil.which("py-spy") is None:
        return {"title": title, "figures": {"skipped": "py-spy not installed"},
                "markdown": "Skipped: `py-spy` is not installed (`pip install -r bench/requirements.txt`)."}
    runs = 2 if quick else 30
    with FakeOpenAIProcess(latency_ms=0, terminate_after=None, log=out / "profile-model.log") as model, Server(out / "profile-server") as server:
        raw = record(server, model.base_url, runs, out, "raw", 250)
        if not quick:
            record(server, model.base_url, 10, out, "flamegraph", 250)
    result = analyse(raw)
    md = [f"`py-spy record --rate 250 --format raw --pid <server>` during {runs} sequential 20-message runs "
          f"({result['samples']} samples; raw stacks in `bench/out/profile.raw.txt`"
          + ("" if quick else ", flame graph in `bench/out/profile.svg`") + ").", "",
          "Where the CPU is spent, by the package of the innermost frame (self time):", "",
          "| package | share of samples |", "|---|---:|"]
    md += [f"| {name} | {fmt(share, 1)} % |" for name, share in result["leaf_package"]]
    md += ["", "What the samples were doing, by the task or callback the event loop was running:", "",
           "| task / callback | share |", "|---|---:|"]
    md += [f"| `{name}` | {fmt(share, 1)} % |" for name, share in result["by_task"][:15]]
    md += ["", "Inclusive share of each package (a sample counts once per package on its stack):", "",
           "| package | inclusive |", "|---|---:|"]
    md += [f"| {name} | {fmt(share, 1)} % |" for name, share in result["package_inclusive"]]
    md += ["", "Our functions (src/), inclusive — everything they called counts:", "",
           "| function | inclusive |", "|---|---:|"]
    md += [f"| `{name}` | {fmt(share, 1)} % |" for name, share in result["ours_inclusive"][:20]]
    md += ["", "The deepest of our frames on each stack (what of ours asked for the CPU):", "",
           "| function | share |", "|---|---:|"]
    md += [f"| `{name}` | {fmt(share, 1)} % |" for name, share in result["ours_deepest"][:15]]
    return {"title": title, "figures": result, "markdown": "\n".join(md)}
