"""The client commands of `python -m autobots` against real servers: run (with --url and embedded), sessions,
history, gallery and publish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from autobots.client import Client

from tests.support.servers import ServerProcess, clean_env
from tests.support.specs import autonomous_spec

pytestmark = pytest.mark.e2e


def autobots(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autobots", *args], cwd=cwd, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "coder.yaml"
    path.write_text(yaml.safe_dump(autonomous_spec()), encoding="utf-8")
    return path


class TestRun:
    def test_prints_the_transcript_and_exits_0_when_completed(self, server: ServerProcess, spec_file, tmp_path):
        done = autobots("run", str(spec_file), "What is 12*(3+4)?", "--url", server.base_url, env=server.env,
                        cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert "coder" in out and "user_proxy" in out and "print(12*(3+4))" in out
        assert "The result is: 84" in out and "exit 0" in out
        assert "completed" in out and "tokens: " in out and "cost: $" in out

    def test_exits_2_when_incomplete(self, server: ServerProcess, tmp_path):
        path = tmp_path / "short.json"
        path.write_text(json.dumps(autonomous_spec(termination={"max_messages": 2})), encoding="utf-8")
        done = autobots("run", str(path), "What is 12*(3+4)?", "--url", server.base_url, env=server.env,
                        cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "incomplete" in done.stdout

    def test_embedded_server(self, spec_file, tmp_path):
        env = clean_env(AUTOBOTS_SANDBOX="local", AUTOBOTS_SANDBOX_POOL_SIZE="0",
                        AUTOBOTS_CONFIG=str(tmp_path / "config.json"), PYTHONUNBUFFERED="1")
        done = autobots("run", str(spec_file), "What is 6*7?", env=env, cwd=tmp_path, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "embedded server at http://127.0.0.1:" in done.stdout
        assert "coder" in done.stdout and "42" in done.stdout and "completed" in done.stdout

    def test_unreadable_spec_is_one_line_and_exit_1(self, server: ServerProcess, tmp_path):
        path = tmp_path / "list.yaml"
        path.write_text("- not a mapping\n", encoding="utf-8")
        done = autobots("run", str(path), "hi", "--url", server.base_url, env=server.env, cwd=tmp_path)
        assert done.returncode == 1 and "must be a mapping" in done.stderr


class TestBrowsing:
    @pytest.fixture
    def answered(self, server: ServerProcess) -> str:
        with Client(server.base_url) as client:
            session = client.sessions.create(workflow=autonomous_spec(), name="cli-browsing")
            client.messages.send(session.id, "What is 12*(3+4)?", wait=True)
        return session.id

    def test_sessions(self, server: ServerProcess, answered, tmp_path):
        done = autobots("sessions", "--url", server.base_url, env=server.env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert answered in done.stdout and "cli-browsing" in done.stdout

    def test_history(self, server: ServerProcess, answered, tmp_path):
        done = autobots("history", answered, env={**server.env, "AUTOBOTS_URL": server.base_url}, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        out = done.stdout
        assert out.index("What is 12*(3+4)?") < out.index("coder") < out.index("The result is: 84")
        assert "user_proxy" in out and "tokens: " in out

    def test_history_of_an_unknown_session(self, server: ServerProcess, tmp_path):
        done = autobots("history", "ses_doesnotexist", "--url", server.base_url, env=server.env, cwd=tmp_path)
        assert done.returncode == 1 and "404" in done.stderr

    def test_publish_then_gallery(self, server: ServerProcess, answered, tmp_path):
        published = autobots("publish", answered, "--tag", "cli-one", "--tag", "cli-two", "--url", server.base_url,
                             env=server.env, cwd=tmp_path)
        assert published.returncode == 0, published.stderr
        assert "published gal_" in published.stdout and "cli-one, cli-two" in published.stdout
        item_id = published.stdout.split("published ", 1)[1].split()[0]
        listed = autobots("gallery", "--tag", "cli-two", "--url", server.base_url, env=server.env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert item_id in listed.stdout and "cli-browsing" in listed.stdout
        empty = autobots("gallery", "--tag", "no-such-tag", "--url", server.base_url, env=server.env, cwd=tmp_path)
        assert item_id not in empty.stdout and "empty" in empty.stdout
