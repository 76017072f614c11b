"""The fake OpenAI-compatible server itself, over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.openai_server import FakeOpenAIProcess, FakeOpenAIServer, RecordedRequest


def chat(server: FakeOpenAIServer, *messages: dict[str, Any], **body: Any) -> httpx.Response:
    payload = {"model": "fake-model", "messages": list(messages) or [{"role": "user", "content": "hi"}], **body}
    return httpx.post(f"{server.base_url}/chat/completions", json=payload, timeout=10)


class TestRoutes:
    def test_models(self, fake_openai: FakeOpenAIServer) -> None:
        response = httpx.get(f"{fake_openai.base_url}/models")
        assert response.status_code == 200
        assert [m["id"] for m in response.json()["data"]] == ["fake-model", "gpt-4o-mini"]

    def test_unknown_route(self, fake_openai: FakeOpenAIServer) -> None:
        response = httpx.get(f"{fake_openai.base_url}/nope")
        assert response.status_code == 404
        assert response.json() == {
            "error": {"message": "no route GET /v1/nope", "type": "not_found", "param": None, "code": None}
        }

    def test_completion_shape_and_record(self, fake_openai: FakeOpenAIServer) -> None:
        response = chat(fake_openai, {"role": "user", "content": "ping"}, temperature=0.7)
        body = response.json()
        assert body["object"] == "chat.completion"
        expected = "Fake reply. (turn 1) You said: ping\nTERMINATE"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": expected}
        assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14}
        [request] = fake_openai.requests
        assert (request.model, request.temperature, request.last_user_text()) == ("fake-model", 0.7, "ping")


class TestReplies:
    def test_terminates_from_the_kth_turn(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.terminate_after = 2
        first = chat(fake_openai, {"role": "user", "content": "a"}).json()["choices"][0]["message"]["content"]
        second = chat(
            fake_openai,
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": first},
            {"role": "user", "content": "b"},
        ).json()["choices"][0]["message"]["content"]
        assert first == "Fake reply. (turn 1) You said: a"
        assert second == "Fake reply. (turn 2) You said: b\nTERMINATE"

    def test_queue_then_responder_then_default(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.queue_replies("one", "two")
        texts = [chat(fake_openai).json()["choices"][0]["message"]["content"] for _ in range(2)]
        fake_openai.responder = lambda request: f"model={request.model}"
        texts.append(chat(fake_openai).json()["choices"][0]["message"]["content"])
        assert texts == ["one", "two", "model=fake-model"]

    def test_async_responder(self, fake_openai: FakeOpenAIServer) -> None:
        async def respond(request: RecordedRequest) -> str:
            await asyncio.sleep(0)
            return request.last_user_text().upper()

        fake_openai.responder = respond
        assert chat(fake_openai).json()["choices"][0]["message"]["content"] == "HI"

    def test_selector_prompt_gets_a_candidate(self, fake_openai: FakeOpenAIServer) -> None:
        prompt = (
            "Roles.\nRead the following conversation. Then select the next role from ['coder', 'critic'] to play.\n"
            "user: task\n\ncoder: code\n\nRead the above conversation. Then select the next role from "
            "['coder', 'critic'] to play."
        )
        reply = chat(fake_openai, {"role": "system", "content": prompt}).json()["choices"][0]["message"]["content"]
        assert reply == "critic"

    def test_latency(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.latency_ms = 150
        started = time.monotonic()
        chat(fake_openai)
        assert time.monotonic() - started >= 0.15


class TestStreaming:
    def test_sse_chunks_and_usage(self, fake_openai: FakeOpenAIServer) -> None:
        response = chat(fake_openai, stream=True, stream_options={"include_usage": True})
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == "Fake reply. (turn 1) You said: hi\nTERMINATE"
        completion = len(text) // 4 + 1
        usage = {"prompt_tokens": 1, "completion_tokens": completion, "total_tokens": completion + 1}
        assert chunks[-1]["usage"] == usage
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


class TestFaults:
    def test_fail_next_with_retry_after(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.fail_next(1, status=429, retry_after=1.5)
        failed, ok = chat(fake_openai), chat(fake_openai)
        assert failed.status_code == 429
        assert (failed.headers["retry-after"], failed.headers["retry-after-ms"]) == ("1.5", "1500")
        assert failed.json()["error"]["message"] == "injected 429"
        assert ok.status_code == 200

    def test_fail_always_until_reset(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.fail_always(status=503)
        assert [chat(fake_openai).status_code for _ in range(3)] == [503, 503, 503]
        fake_openai.reset()
        assert chat(fake_openai).status_code == 200
        assert len(fake_openai.requests) == 1

    def test_stall(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.stall_next(1, seconds=5)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{fake_openai.base_url}/chat/completions", json={"messages": []}, timeout=0.2)

    def test_drop(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.drop_next(1)
        with pytest.raises(httpx.RemoteProtocolError):
            chat(fake_openai)
        assert chat(fake_openai).status_code == 200


class TestConcurrency:
    async def test_200_concurrent_connections(self, fake_openai: FakeOpenAIServer) -> None:
        """Raw sockets, so the measure is the server's and not an HTTP client's pool."""
        fake_openai.latency_ms = 50
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

        async def one() -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", fake_openai.port)
            writer.write(request)
            data = b""
            while b"TERMINATE" not in data:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                data += chunk
            writer.close()
            return data

        responses = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(200))), timeout=10)
        assert all(r.startswith(b"HTTP/1.1 200") for r in responses)
        assert len(fake_openai.requests) == 200


class TestProcess:
    def test_cli_process(self) -> None:
        with FakeOpenAIProcess(latency_ms=1) as server:
            response = httpx.post(
                f"{server.base_url}/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hey"}]},
                timeout=10,
            )
        assert response.json()["choices"][0]["message"]["content"] == "Fake reply. (turn 1) You said: hey\nTERMINATE"

    def test_process_that_never_terminates_logs_to_a_file(self, tmp_path: Path) -> None:
        log = tmp_path / "logs" / "model.log"
        with FakeOpenAIProcess(terminate_after=None, log=log) as server:
            assert Path(f"/proc/{server.pid}").exists()
            response = httpx.post(f"{server.base_url}/chat/completions",
                                  json={"model": "m", "messages": [{"role": "user", "content": "hey"}]}, timeout=10)
        assert response.json()["choices"][0]["message"]["content"] == "Fake reply. (turn 1) You said: hey"
        assert log.is_file()
