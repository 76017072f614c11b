"""Runs whose code executes in the real Docker sandbox: results, files, cancel mid-execution."""

from __future__ import annotations

import asyncio
import shutil
import tempfile

import httpx
import pytest
from autobots.config import Settings
from autobots.sandbox._select import probe_docker
from autobots.web import create_app

from tests.support.api import create_session, send_and_wait
from tests.support.sandbox import require_backend
from tests.support.specs import autonomous_spec

pytestmark = pytest.mark.docker


@pytest.fixture
async def docker_client(database_url):
    probe, docker_client_ = probe_docker(Settings(sandbox="docker"))
    if docker_client_ is not None:
        docker_client_.close()
    require_backend("docker", probe.ok, probe.detail)
    root = tempfile.mkdtemp(prefix="autobots-ws-", dir="/tmp")
    settings = Settings(database_url=database_url, sandbox="docker", sandbox_pool_size=1,
                        sandbox_workspace_root=root, sandbox_default_timeout_s=20, run_max_seconds=60)
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1",
                                         timeout=60) as client:
                yield client, app
    finally:
        shutil.rmtree(root, ignore_errors=True)


def openai_coder(base_url: str) -> dict:
    return autonomous_spec(models={"default": {"provider": "openai", "model": "m", "base_url": base_url}},
                           agents=[{"name": "coder"}, {"name": "user_proxy", "kind": "userproxy",
                                                       "code_execution": {"timeout_s": 20}}])


async def test_code_runs_in_docker_and_is_marked_isolated(docker_client):
    client, _ = docker_client
    session = await create_session(client)
    posted = await send_and_wait(client, session["id"], "What is 12*(3+4)?")
    metadata = posted["reply"]["metadata"]
    assert posted["reply"]["content"] == "The result is: 84"
    assert metadata["sandbox"] == "docker" and metadata["sandbox_isolated"] is True
    assert metadata["code_executions"][0]["output"].strip() == "84"


async def test_files_written_by_code_can_be_listed_and_downloaded_by_the_owner(docker_client, fake_openai):
    client, _ = docker_client
    fake_openai.queue_replies("```python\nopen('report.txt', 'w').write('hello from the sandbox')\nprint('ok')\n```",
                              "Saved. TERMINATE")
    session = await create_session(client, openai_coder(fake_openai.base_url))
    run_id = (await send_and_wait(client, session["id"], "write a file"))["run"]["id"]
    files = (await client.get(f"/api/v1/runs/{run_id}/files")).json()["data"]
    assert [f["path"] for f in files] == ["report.txt"]
    download = await client.get(f"/api/v1/runs/{run_id}/files/report.txt")
    assert download.status_code == 200 and download.content == b"hello from the sandbox"
    assert (await client.get(f"/api/v1/runs/{run_id}/files/report.txt",
                             headers={"X-User-Id": "mallory"})).status_code == 404
    escape = await client.get(f"/api/v1/runs/{run_id}/files/..%2F..%2F..%2Fetc%2Fpasswd")
    assert escape.status_code == 404


async def test_cancel_kills_a_long_sandboxed_execution(docker_client, fake_openai):
    client, app = docker_client
    fake_openai.queue_replies("```python\nimport time\nprint('started', flush=True)\ntime.sleep(60)\n```")
    session = await create_session(client, openai_coder(fake_openai.base_url))
    run_id = (await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "sleep"})).json()[
        "run"]["id"]
    for _ in range(200):
        events = (await client.get(f"/api/v1/runs/{run_id}/events")).json()
        if any(e["type"] == "message" for e in events):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    cancelled = await client.post(f"/api/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200, cancelled.json()
    run = await app.state.services.runs.wait(run_id, limit_s=10)
    assert run.status == "cancelled", [e["type"] for e in (await client.get(f"/api/v1/runs/{run_id}/events")).json()]
    assert run.finished_at - run.started_at < 30
    messages = (await client.get(f"/api/v1/sessions/{session['id']}/messages?order=asc")).json()["data"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["metadata"]["status"] == "cancelled"
    assert "time.sleep(60)" in messages[1]["metadata"]["messages"][0]["content"]
