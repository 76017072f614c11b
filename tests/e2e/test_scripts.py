"""Each client script in `autobots.web.testing`, run against a real server over HTTP."""

from __future__ import annotations

import pytest
from autobots.web.testing import autonomous, gallery, groupchat, history, sequential

pytestmark = pytest.mark.e2e


def run_script(main, base_url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--base-url", base_url, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


class TestScripts:
    def test_autonomous(self, base_url, capsys):
        code, out = run_script(autonomous.main, base_url, capsys)
        assert code == 0, out
        assert "[1] run.queued" in out and "run.completed" in out
        assert "code.execution by user_proxy (exit code 0)" in out and "print(12*(3+4))" in out
        assert "output: 84" in out
        assert "=== transcript of ses_" in out and "user: What is 12*(3+4)?" in out
        assert out.rstrip().endswith("OK")

    def test_autonomous_yaml(self, base_url, capsys):
        code, out = run_script(autonomous.main, base_url, capsys, "--yaml", "--message", "What is 6*7?")
        assert code == 0, out
        assert "(from YAML; autonomous: autonomous-coder-yaml)" in out
        assert "output: 42" in out

    def test_sequential(self, base_url, capsys):
        code, out = run_script(sequential.main, base_url, capsys)
        assert code == 0, out
        assert "(sequential: research-then-write)" in out
        researcher, writer = out.index("] researcher: "), out.index("] writer: ")
        assert researcher < writer
        assert "zero matters in positional notation" in out[writer:]

    def test_groupchat(self, base_url, capsys):
        code, out = run_script(groupchat.main, base_url, capsys)
        assert code == 0, out
        assert "] planner: " in out and "] coder: " in out
        assert "code.execution by executor (exit code 0)" in out
        assert "output: 1045" in out

    def test_history(self, base_url, capsys):
        code, out = run_script(history.main, base_url, capsys)
        assert code == 0, out
        assert out.count(">>> user: ") == 2
        assert "page 4: msg_" in out and "page 5:" not in out
        assert "=== runs ===" in out and "=== events of run_" in out
        assert "=== resume the stream of run_" in out
        assert "replayed seqs [5, 6, 7, 8] (expected [5, 6, 7, 8])" in out

    def test_gallery(self, base_url, capsys):
        code, out = run_script(gallery.main, base_url, capsys, "--tag", "e2e")
        assert code == 0, out
        assert "sk-test-inline-secret" not in out
        assert "inline api key in a response: nowhere" in out
        assert "GET now answers 404" in out

    def test_env_vars_and_failure_exit_code(self, apikey_server, api_keys, capsys, monkeypatch):
        monkeypatch.setenv("AUTOBOTS_BASE_URL", apikey_server.base_url)
        monkeypatch.delenv("AUTOBOTS_API_KEY", raising=False)
        assert autonomous.main([]) == 1
        assert "-> 401" in capsys.readouterr().err
        monkeypatch.setenv("AUTOBOTS_API_KEY", api_keys["alice"])
        assert autonomous.main([]) == 0
        assert "output: 84" in capsys.readouterr().out

    def test_model_base_url_switches_to_openai(self, base_url, capsys, fake_openai):
        code, out = run_script(sequential.main, base_url, capsys, "--model-base-url", fake_openai.base_url,
                               "--model", "local-model", "--message", "Summarise zero.")
        assert code == 0, out
        requests = fake_openai.chat_requests()
        assert requests and {r.model for r in requests} == {"local-model"}
        assert "] researcher: Fake reply." in out and "] writer: Fake reply." in out
