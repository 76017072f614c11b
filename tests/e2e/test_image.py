"""The service's container image, built offline by `python -m autobots image build` and run the way compose.yaml
runs it (its security options, init and environment; SQLite in the data volume instead of PostgreSQL, which
cannot be pulled here): it becomes healthy, serves a session whose code runs in the bubblewrap sandbox inside
the container, and runs as a non-root user.

Skips when no Docker engine (or debootstrap, for the offline base) is there, unless AUTOBOTS_REQUIRE_DOCKER=1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from autobots.image import BASE_TAG

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT_S = 600  # the first build debootstraps the base (about a minute); later ones take seconds
HEALTHY_TIMEOUT_S = 90.0
CODER_SPEC = {
    "name": "coder", "type": "autonomous",
    "agents": [
        {"name": "coder", "kind": "assistant", "system_message": "You are a python coder."},
        {"name": "user_proxy", "kind": "userproxy", "code_execution": {"timeout_s": 30}},
    ],
    "sender": "user_proxy", "receiver": "coder",
}


@dataclass
class Container:
    """A running service container and the loopback URL its port is published on."""

    name: str
    base_url: str

    def exec(self, *argv: str) -> str:
        result = _docker("exec", self.name, *argv)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout


def _docker(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False)


def _unavailable() -> str | None:
    if shutil.which("docker") is None:
        return "no docker CLI"
    if _docker("info", "--format", "{{.ServerVersion}}", timeout=30).returncode != 0:
        return "no Docker engine answers"
    if shutil.which("debootstrap") is None and _docker("image", "inspect", BASE_TAG).returncode != 0:
        return f"debootstrap is not installed and {BASE_TAG} is not built (the offline base needs it)"
    return None


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8")))


def _run_options() -> list[str]:
    """`docker run` options for compose.yaml's `autobots` service, less the database it points at."""
    service = _compose()["services"]["autobots"]
    options = ["--init"] if service.get("init") else []
    options += [arg for opt in service.get("security_opt", []) for arg in ("--security-opt", opt)]
    options += [arg for cap in service.get("cap_drop", []) for arg in ("--cap-drop", cap)]
    env = {k: str(v) for k, v in service["environment"].items() if k != "AUTOBOTS_DATABASE_URL"}
    return options + [arg for item in env.items() for arg in ("-e", "=".join(item))]


@pytest.fixture(scope="module")
def image() -> str:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("AUTOBOTS_REQUIRE_DOCKER") == "1":
            pytest.fail(f"container image test: {reason} (and AUTOBOTS_REQUIRE_DOCKER=1)")
        pytest.skip(f"container image test: {reason}")
    result = subprocess.run([sys.executable, "-m", "autobots", "image", "build"], cwd=ROOT, capture_output=True,
                            text=True, timeout=BUILD_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    name = f"autobots-image-test-{os.getpid()}"
    started = _docker("run", "--detach", "--name", name, "--publish", "127.0.0.1::8081", "--health-interval", "2s",
                      *_run_options(), image)
    try:
        assert started.returncode == 0, started.stderr
        port = _docker("port", name, "8081/tcp").stdout.splitlines()[0].rsplit(":", 1)[1]
        _wait_healthy(name)
        yield Container(name, f"http://127.0.0.1:{port}")
    finally:
        _docker("rm", "--force", "--volumes", name)


def _wait_healthy(name: str) -> None:
    deadline = time.monotonic() + HEALTHY_TIMEOUT_S
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        state = json.loads(_docker("inspect", "--format", "{{json .State}}", name).stdout or "{}")
        if state.get("Health", {}).get("Status") == "healthy":
            return
        if not state.get("Running"):
            break
        time.sleep(1)
    logs = _docker("logs", "--tail", "60", name)
    pytest.fail(f"container {name} not healthy: {state}\n{logs.stdout[-4000:]}{logs.stderr[-4000:]}")


@pytest.mark.e2e
@pytest.mark.docker
class TestServiceImage:
    def test_healthz(self, container: Container) -> None:
        response = httpx.get(f"{container.base_url}/healthz", timeout=10)

        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_session_completes_with_code_in_the_sandbox(self, container: Container) -> None:
        key = container.exec("python", "-m", "autobots", "users", "add", "alice").strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"{container.base_url}/api/v1", headers=headers, timeout=60) as client:
            assert client.get("/sessions").status_code == 200
            assert httpx.get(f"{container.base_url}/api/v1/sessions", timeout=10).status_code == 401

            session = client.post("/sessions", json={"workflow": CODER_SPEC})
            assert session.status_code in (200, 201), session.text
            sent = client.post(f"/sessions/{session.json()['id']}/messages", params={"wait": "true"},
                               json={"content": "What is 12*(3+4)?"})

        assert sent.status_code in (200, 201), sent.text
        body = sent.json()
        assert body["run"]["status"] == "completed", body
        assert body["reply"]["content"] == "The result is: 84"
        metadata = body["reply"]["metadata"]
        assert metadata["sandbox"] == "process" and metadata["sandbox_isolated"] is True
        assert [(e["exit_code"], e["output"]) for e in metadata["code_executions"]] == [(0, "84\n")]

    def test_runs_as_non_root(self, container: Container) -> None:
        assert container.exec("id", "-u").strip() != "0"
        uids = {line.strip() for line in container.exec("ps", "-eo", "uid=").splitlines() if line.strip()}
        assert uids and "0" not in uids, uids


class TestComposeFile:
    """compose.yaml cannot be started here (postgres:16 cannot be pulled); its shape is checked instead."""

    def test_service_with_postgres(self) -> None:
        compose = _compose()
        service, postgres = compose["services"]["autobots"], compose["services"]["postgres"]

        assert service["build"]["context"] == "." and "BASE" in service["build"]["args"]
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        env = service["environment"]
        database_url = env["AUTOBOTS_DATABASE_URL"]
        assert database_url.startswith("postgresql://") and "@postgres:5432/" in database_url
        assert env["AUTOBOTS_AUTH_MODE"] == "apikey" and env["AUTOBOTS_HOST"] == "0.0.0.0"
        assert env["AUTOBOTS_SANDBOX"] == "process"
        assert "autobots-data:/srv/autobots/data" in service["volumes"] and "autobots-data" in compose["volumes"]
        assert {"seccomp=unconfined", "systempaths=unconfined"} <= set(service["security_opt"])
        assert not any("docker.sock" in volume for volume in service["volumes"])
        assert postgres["image"] == "postgres:16" and "pg_isready" in str(postgres["healthcheck"]["test"])
        assert "postgres-data" in compose["volumes"]
