"""The README's first command, from a fresh clone: `bash scripts/serve.sh` installs, sets the sandbox up and
serves a server whose code execution works, so the README's own "Try it" requests succeed as written."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 600.0  # a fresh clone installs its virtualenv first


def try_it_bodies() -> list[dict]:
    """The JSON bodies of the README's "Try it" curl commands, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return [json.loads(body) for body in re.findall(r"-d '(\{.*?\})'", section, flags=re.S)]


@pytest.fixture
def fresh_clone(tmp_path: Path) -> Path:
    clone = tmp_path / "autobots"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    return clone


@pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("AUTOBOTS_REQUIRE_DOCKER"),
                    reason="serve.sh sets the sandbox up only as root")
def test_readme_try_it_works_after_serve_sh_from_a_fresh_clone(fresh_clone: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOBOTS_", "OPENAI_", "VIRTUAL_ENV"))}
    log_path = fresh_clone.parent / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["bash", "scripts/serve.sh", "--port", str(port)], cwd=fresh_clone, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert process.poll() is None, f"serve.sh exited {process.returncode}:\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"no /healthz in time:\n{log_path.read_text()[-4000:]}"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        ready = httpx.get(f"{base_url}/readyz", timeout=10).json()
        assert ready["checks"]["sandbox"]["backend"] in ("docker", "process"), ready
        session_body, message_body = try_it_bodies()[:2]
        with httpx.Client(base_url=base_url, timeout=120) as client:
            session = client.post("/api/v1/sessions", json=session_body)
            assert session.status_code == 201, session.text
            posted = client.post(f"/api/v1/sessions/{session.json()['id']}/messages", params={"wait": "true"},
                                 json=message_body)
        assert posted.status_code == 200, posted.text
        result = posted.json()
        assert result["run"]["status"] == "completed", result
        assert "84" in result["reply"]["content"]
        executions = result["reply"]["metadata"]["code_executions"]
        assert executions and executions[0]["exit_code"] == 0 and "84" in executions[0]["output"]
        log = log_path.read_text()
        assert re.search(r"sandbox: (docker|process)", log), log[-4000:]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
