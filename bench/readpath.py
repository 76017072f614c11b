"""3. Read path: GET /sessions/{id}/messages of a 100-message session vs a bare FastAPI route (bench/bare_app.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ROOT,
    TASK,
    Server,
    clean_env,
    create_sessions,
    create_workflow,
    fmt,
    median,
    run_json,
)
from tests.support.openai_server import FakeOpenAIProcess
from tests.support.servers import free_port
from tests.support.specs import two_assistants_spec

TARGET = 0.40
CONNECTIONS = 16


def fill_session(client: httpx.Client, model_url: str, runs: int) -> str:
    """A session with 2 × runs messages: each run adds the user message and a reply (1 agent message)."""
    workflow = create_workflow(client, two_assistants_spec(model_url, max_messages=1, name="readpath"))
    session_id = create_sessions(client, workflow, 1)[0]
    for i in range(runs):
        response = client.post(f"/api/v1/sessions/{session_id}/messages", params={"wait": "true"},
                               json={"content": f"{TASK} ({i})"})
        response.raise_for_status()
    return session_id


def wrk(url: str, duration_s: float) -> dict[str, Any]:
    done = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration_s:g}s", "--latency", url],
                          capture_output=True, text=True, timeout=duration_s + 60, check=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", done.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return {"rps": rps, "p50": f"{p50.group(1)}{p50.group(2)}" if p50 else None,
            "non_2xx": int(errors.group(1)) if errors else 0, "raw": done.stdout}


def measure(url: str, duration_s: float, tool: str) -> dict[str, Any]:
    if tool == "wrk":
        if duration_s > 1:
            wrk(url, 1.0)  # warm-up
        return wrk(url, duration_s)
    def args(seconds: float) -> list[str]:
        return ["-m", "bench.httpload", "--url", url, "--duration-s", str(seconds), "--processes", "2",
                "--connections", str(CONNECTIONS // 2)]

    run_json(args(1.0), timeout_s=120)  # warm-up
    return run_json(args(duration_s), timeout_s=duration_s + 120)


class BareApp:
    def __init__(self, document: Path, log: Path) -> None:
        self.port = free_port()
        self.document, self.log = document, log
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> BareApp:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "bench.bare_app", "--port", str(self.port),
                                          "--json", str(self.document)], stdout=log, stderr=subprocess.STDOUT,
                                         env=clean_env(), cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("bare app did not start")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


def run(quick: bool, out: Path, force_tool: str | None = None) -> dict[str, Any]:
    runs, duration, rounds = (3, 1.0, 1) if quick else (50, 10.0, 2)
    tool = force_tool or ("wrk" if shutil.which("wrk") else "httpx")
    document = out / "readpath-document.json"
    results: dict[str, list[dict[str, Any]]] = {"service": [], "bare": []}
    with FakeOpenAIProcess(latency_ms=0, terminate_after=None, log=out / "readpath-model.log") as model, Server(out / "readpath-server") as server:
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            session_id = fill_session(client, model.base_url, runs)
            path = f"/api/v1/sessions/{session_id}/messages?limit=100"
            body = client.get(path).json()
            if len(body["data"]) != 2 * runs:
                raise RuntimeError(f"the session has {len(body['data'])} messages, expected {2 * runs}")
        document.write_text(json.dumps(body))
        with BareApp(document, out / "bare-app.log") as bare:
            for _ in range(rounds):
                results["service"].append(measure(server.base_url + path, duration, tool))
                results["bare"].append(measure(f"http://127.0.0.1:{bare.port}{path}", duration, tool))
    s_rps = median([r["rps"] for r in results["service"]])
    b_rps = median([r["rps"] for r in results["bare"]])
    share = s_rps / b_rps
    figures = {"messages": len(body["data"]), "bytes": len(json.dumps(body)), "tool": tool,
               "service_rps": s_rps, "bare_rps": b_rps, "share": share, "target": TARGET, "met": share >= TARGET,
               "rounds": {k: [{kk: vv for kk, vv in r.items() if kk != "raw"} for r in v] for k, v in results.items()}}
    (out / "readpath-raw.txt").write_text("\n\n".join(r.get("raw", json.dumps(r)) for v in results.values() for r in v))
    tool_text = (f"`wrk -t1 -c{CONNECTIONS} -d{duration:g}s` (after a 1 s warm-up)" if tool == "wrk" else
                 f"the httpx fallback `bench/httpload.py` (2 processes × {CONNECTIONS // 2} connections, "
                 f"{duration:g} s)" + (" — `wrk` was not installed" if shutil.which("wrk") is None else ""))
    md = [
        f"A session filled with {len(body['data'])} messages ({runs} runs of a 1-message workflow: user message + "
        f"reply with its metadata; the response is {len(json.dumps(body)) // 1024} KiB), read with "
        f"`GET /api/v1/sessions/{{id}}/messages?limit=100`. Baseline: `bench/bare_app.py`, a FastAPI route "
        "returning the same document (parsed, from memory) under the same `uvicorn.run` settings (uvicorn's "
        f"automatic loop and HTTP choice — uvloop and httptools when installed, as here — log level INFO, access "
        f"log off). Load: {tool_text}; median of {rounds} alternating round(s).",
        "",
        "| | requests/s |", "|---|---:|",
        f"| service | {fmt(s_rps, 0)} |", f"| bare FastAPI route | {fmt(b_rps, 0)} |",
        f"| service / bare | **{fmt(share * 100, 1)} %** |",
        "",
        f"Target ≥ {TARGET * 100:g} %: **{'met' if share >= TARGET else 'missed'}**.",
    ]
    return {"title": "3. Read path", "figures": figures, "markdown": "\n".join(md)}
