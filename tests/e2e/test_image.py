"""The service's container image, built offline by `python -m autobots image build` and run the way compose.yaml
runs it (its security options, init and environment; SQLite in the data volume instead of PostgreSQL, which
cannot be pulled here): it becomes healthy, serves a session whose code runs in the bubblewrap sandbox inside
the container, and runs as a non-root user.

Skips when no Docker engine (or debootstrap, for the offline base) is there, unless AUTOBOTS_REQUIRE_DOCKER=1.

compose.yaml's `scaled` profile is checked in shape everywhere (`TestComposeFile`), and brought up for real by
`TestScaledProfile` (2 API replicas behind HAProxy, 2 run workers, Debian's PostgreSQL, all built offline by
`image build --scaled`): it needs Compose v2 besides the engine (`docker compose`, a `docker-compose` v2, or the
command in AUTOBOTS_COMPOSE, e.g. `/path/to/docker-compose`), which Debian bookworm does not package, so it skips
without one unless AUTOBOTS_REQUIRE_COMPOSE=1. About a minute with the images built (the first build: 3 more).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from autobots.image import BASE_TAG, POSTGRES_TAG

from tests.support.servers import free_port

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
    """compose.yaml cannot be started here with its defaults (postgres:16 cannot be pulled); its shape is checked."""

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
        assert "AUTOBOTS_RUN_DISPATCH" not in env  # the single service runs its runs itself
        assert "autobots-data:/srv/autobots/data" in service["volumes"] and "autobots-data" in compose["volumes"]
        assert {"seccomp=unconfined", "systempaths=unconfined"} <= set(service["security_opt"])
        assert not any("docker.sock" in volume for volume in service["volumes"])
        assert "profiles" not in service and "profiles" not in postgres  # `docker compose up` as before
        assert postgres["image"] == "${AUTOBOTS_POSTGRES_IMAGE:-postgres:16}"
        assert "pg_isready" in str(postgres["healthcheck"]["test"])
        assert "postgres-data" in compose["volumes"]

    def test_scaled_profile_services(self) -> None:
        services = _compose()["services"]
        scaled = {name for name, service in services.items() if "scaled" in service.get("profiles", [])}

        assert scaled == {"api", "worker", "proxy"}
        api, worker, proxy = services["api"], services["worker"], services["proxy"]
        assert api["command"] == ["serve", "--run-workers", "0"] and worker["command"] == ["worker"]
        assert api["deploy"]["replicas"] == 2 and worker["deploy"]["replicas"] == 2
        assert api["image"] == worker["image"] == services["autobots"]["image"]
        assert "ports" not in api and "ports" not in worker  # the proxy's port is the only way in
        for service in (api, worker):
            assert service["depends_on"] == {"postgres": {"condition": "service_healthy"}}
        assert proxy["depends_on"] == {"api": {"condition": "service_started"}}
        # The single service must not run beside the scaled ones: nothing of the profile pulls it in.
        assert all("autobots" not in services[name].get("depends_on", {}) for name in scaled)

    def test_scaled_processes_share_dispatch_database_and_auth(self) -> None:
        services = _compose()["services"]
        api, worker = services["api"]["environment"], services["worker"]["environment"]

        assert api == worker
        assert api["AUTOBOTS_RUN_DISPATCH"] == "procrastinate"
        assert api["AUTOBOTS_DATABASE_URL"] == services["autobots"]["environment"]["AUTOBOTS_DATABASE_URL"]
        assert api["AUTOBOTS_AUTH_MODE"] == "apikey" and api["AUTOBOTS_HOST"] == "0.0.0.0"
        assert api["AUTOBOTS_PORT"] == "8081" and api["AUTOBOTS_SANDBOX"] == "process"

    def test_scaled_processes_confined_like_the_service(self) -> None:
        services = _compose()["services"]
        single = services["autobots"]

        for name in ("api", "worker"):
            service = services[name]
            assert service["security_opt"] == single["security_opt"] and service["cap_drop"] == ["ALL"]
            assert service["init"] is True and service["volumes"] == single["volumes"]  # workspaces shared
            assert not any("docker.sock" in volume for volume in service["volumes"])
        assert services["worker"]["healthcheck"] == {"disable": True}  # no HTTP in a worker
        proxy = services["proxy"]
        assert proxy["cap_drop"] == ["ALL"] and "no-new-privileges:true" in proxy["security_opt"]

    def test_proxy_one_port_config_mounted_and_baked(self) -> None:
        proxy = _compose()["services"]["proxy"]

        assert proxy["build"]["context"] == "deploy/proxy" and proxy["image"] == "autobots-proxy:latest"
        [port] = proxy["ports"]
        assert port.startswith("127.0.0.1:") and port.endswith(":8080")
        assert proxy["volumes"] == ["./deploy/proxy/haproxy.cfg:/etc/haproxy/haproxy.cfg:ro"]
        dockerfile = (ROOT / "deploy" / "proxy" / "Dockerfile").read_text(encoding="utf-8")
        assert "COPY haproxy.cfg /etc/haproxy/haproxy.cfg" in dockerfile and "haproxy" in dockerfile

    def test_proxy_balances_the_api_replicas_and_lets_streams_last(self) -> None:
        config = _haproxy_config()

        assert re.search(r"^\s*bind :8080$", config, re.M)
        # Every replica of `api`, found with Docker's DNS and re-resolved, checked on /healthz.
        template = re.search(r"^\s*server-template \S+ 1-(\d+) api:8081$", config, re.M)
        assert template and int(template.group(1)) >= 2
        assert re.search(r"^\s*nameserver \S+ 127\.0\.0\.11:53$", config, re.M)
        assert re.search(r"^\s*default-server .*\bcheck\b.*\bresolvers docker\b", config, re.M)
        assert "option httpchk GET /healthz" in config
        # Streams and `?wait=true` may stay quiet for a whole run (run_max_seconds, 600 by default).
        timeouts = {name: _seconds(value) for name, value in re.findall(r"^\s*timeout (\S+) (\S+)$", config, re.M)}
        assert timeouts["server"] > 600 and timeouts["client"] > 600
        # Nothing that would hold a response back or rewrite the API's SSE headers.
        assert "compression" not in config and "x-accel-buffering" not in config.lower()
        assert not re.search(r"^\s*http-response (del|set)-header", config, re.M)

    def test_offline_postgres_image_matches_the_service(self) -> None:
        postgres = _compose()["services"]["postgres"]
        dockerfile = (ROOT / "deploy" / "postgres" / "Dockerfile").read_text(encoding="utf-8")
        entrypoint = ROOT / "deploy" / "postgres" / "entrypoint.sh"

        assert POSTGRES_TAG in dockerfile
        volume_target = postgres["volumes"][0].split(":")[1]
        assert f"PGDATA={volume_target}" in dockerfile and f"VOLUME {volume_target}" in dockerfile
        assert os.access(entrypoint, os.X_OK)
        script = entrypoint.read_text(encoding="utf-8")
        assert all(name in script for name in postgres["environment"])  # POSTGRES_USER, _PASSWORD, _DB


def _haproxy_config() -> str:
    """deploy/proxy/haproxy.cfg's directives, without its comments."""
    text = (ROOT / "deploy" / "proxy" / "haproxy.cfg").read_text(encoding="utf-8")
    return "\n".join(line.split("#", 1)[0].rstrip() for line in text.splitlines())


def _seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, None: 0.001, "m": 60, "h": 3600, "d": 86400}[unit]


# --- the scaled profile, brought up -----------------------------------------------------------------------------

SCALED_UP_TIMEOUT_S = 120.0


def _compose_command() -> list[str] | None:
    """Compose v2 as a command, or None: Compose v1 cannot pass `systempaths=unconfined` (compose.yaml says why)."""
    configured = os.environ.get("AUTOBOTS_COMPOSE")
    candidates = [shlex.split(configured)] if configured else [["docker", "compose"], ["docker-compose"]]
    for command in candidates:
        if shutil.which(command[0]) is None:
            continue
        try:
            version = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = re.match(r"v?(\d+)\.", version.stdout.strip())
        if version.returncode == 0 and major and int(major.group(1)) >= 2:
            return command
    return None


@dataclass
class ScaledStack:
    """A running `scaled` profile under its own project name; the proxy's port at `base_url`."""

    compose: list[str]
    env: dict[str, str]
    base_url: str
    headers: dict[str, str] = field(default_factory=dict)

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.compose, *argv], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ok(self, *argv: str, timeout: float = 120) -> str:
        result = self.run(*argv, timeout=timeout)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        return result.stdout

    def sql(self, statement: str) -> list[str]:
        out = self.ok("exec", "-T", "postgres", "psql", "-U", "autobots", "-d", "autobots", "-Atc", statement)
        return [line for line in out.splitlines() if line]

    def workers(self) -> list[str]:
        """The worker containers' ids (a run's `owner` starts with its executor's hostname: the short id)."""
        return sorted(self.ok("ps", "-q", "worker").split())


@pytest.fixture(scope="module")
def scaled_stack() -> Iterator[ScaledStack]:
    reason = _unavailable()
    compose = _compose_command()
    if reason is None and compose is None:
        reason = "no Compose v2 (docker compose, docker-compose v2 or AUTOBOTS_COMPOSE)"
    if reason is not None:
        if os.environ.get("AUTOBOTS_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"scaled profile test: {reason} (and AUTOBOTS_REQUIRE_COMPOSE=1)")
        pytest.skip(f"scaled profile test: {reason}")
    assert compose is not None
    built = subprocess.run([sys.executable, "-m", "autobots", "image", "build", "--scaled"], cwd=ROOT,
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    port = free_port()
    env = {**os.environ, "AUTOBOTS_POSTGRES_IMAGE": POSTGRES_TAG, "AUTOBOTS_SCALED_PORT": str(port)}
    project = f"autobots-scaled-test-{os.getpid()}"
    stack = ScaledStack([*compose, "--project-name", project, "--profile", "scaled"], env, f"http://127.0.0.1:{port}")
    try:
        stack.ok("up", "--detach", "--no-build", "proxy", "worker", timeout=SCALED_UP_TIMEOUT_S)
        _wait_for_replicas(stack, 2)
        key = stack.ok("exec", "-T", "api", "python", "-m", "autobots", "users", "add", "alice").strip()
        stack.headers = {"Authorization": f"Bearer {key.splitlines()[-1]}"}
        yield stack
    finally:
        stack.run("down", "--volumes", "--remove-orphans", "--timeout", "10")


def _wait_for_replicas(stack: ScaledStack, count: int) -> None:
    """Until the proxy has found and checked `count` API replicas (it logs each as UP)."""
    deadline = time.monotonic() + SCALED_UP_TIMEOUT_S
    up: set[str] = set()
    while time.monotonic() < deadline:
        logs = stack.run("logs", "--no-log-prefix", "proxy").stdout
        up = set(re.findall(r"Server (api/\S+) is UP", logs))
        if len(up) >= count:
            return
        time.sleep(1)
    logs = stack.run("logs", "--tail", "80").stdout
    pytest.fail(f"the proxy found {sorted(up)} API replicas UP, not {count}:\n{logs[-6000:]}")


def _docker_ok(*argv: str) -> None:
    result = _docker(*argv)
    assert result.returncode == 0, result.stdout + result.stderr


def _send(client: httpx.Client, content: str = "What is 12*(3+4)?") -> dict[str, Any]:
    session = client.post("/sessions", json={"workflow": CODER_SPEC})
    assert session.status_code == 201, session.text
    sent = client.post(f"/sessions/{session.json()['id']}/messages", params={"wait": "true"},
                       json={"content": content})
    assert sent.status_code in (200, 201), sent.text
    return dict(sent.json())


@pytest.mark.e2e
@pytest.mark.docker
class TestScaledProfile:
    def test_sessions_complete_through_the_proxy_on_both_replicas(self, scaled_stack: ScaledStack) -> None:
        assert httpx.get(f"{scaled_stack.base_url}/api/v1/sessions", timeout=10).status_code == 401
        with httpx.Client(base_url=f"{scaled_stack.base_url}/api/v1", headers=scaled_stack.headers,
                          timeout=60) as client:
            bodies = [_send(client) for _ in range(3)]

        for body in bodies:
            assert body["run"]["status"] == "completed", body
            assert body["reply"]["content"] == "The result is: 84"
            assert body["reply"]["metadata"]["sandbox"] == "process"
        served = re.findall(r" (api/\S+) .*\"POST /api/v1/sessions",
                            scaled_stack.run("logs", "--no-log-prefix", "proxy").stdout)
        assert len(set(served)) == 2, served  # the proxy shared the requests out

    def test_both_workers_take_runs_and_streams_pass_unbuffered(self, scaled_stack: ScaledStack) -> None:
        first, second = scaled_stack.workers()
        scaled_stack.ok("stop", "--timeout", "10", "worker")
        with httpx.Client(base_url=f"{scaled_stack.base_url}/api/v1", headers=scaled_stack.headers,
                          timeout=60) as client:
            session = client.post("/sessions", json={"workflow": CODER_SPEC}).json()
            with client.stream("POST", f"/sessions/{session['id']}/messages", headers={"Accept": "text/event-stream"},
                               json={"content": "What is 12*(3+4)?"}) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                assert stream.headers["x-accel-buffering"] == "no"
                lines = stream.iter_lines()
                # No worker runs: the run cannot end, so its first event arriving proves the proxy passes a stream
                # on as it comes.
                assert next(line for line in lines if line.startswith("event:")) == "event: run.queued"
                _docker_ok("start", second)
                events = [line.removeprefix("event: ") for line in lines if line.startswith("event:")]
            assert events[-2:] == ["run.completed", "done"], events
            streamed_run = stream.headers["x-run-id"]

            _docker_ok("stop", "--time", "10", second)
            _docker_ok("start", first)
            waited_run = _send(client)["run"]

        assert waited_run["status"] == "completed"
        owners = dict(row.split("|") for row in scaled_stack.sql(
            f"SELECT id || '|' || owner FROM run WHERE id IN ('{streamed_run}', '{waited_run['id']}')"))
        assert owners[streamed_run].startswith(f"{second[:12]}:"), owners
        assert owners[waited_run["id"]].startswith(f"{first[:12]}:"), owners
