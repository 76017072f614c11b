"""A small OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

In-process: ``with FakeOpenAIServer() as server: ...`` (uvicorn in a background thread) and point a
client at ``server.base_url``. Separate process: ``python tests/support/openai_server.py --port P
--latency-ms L`` prints ``READY <base_url>`` once it listens; ``FakeOpenAIProcess`` wraps that.

It serves ``POST /v1/chat/completions`` (plain and ``stream=true`` SSE, both with usage) and
``GET /v1/models``. Replies come, in order of precedence, from the queue (``queue_replies``), the
``responder`` callback, or the default: an echo of the last user message, with the termination text
appended from the ``terminate_after``-th assistant turn of the conversation on (counted from the
request itself, so concurrent conversations do not disturb each other). A selector prompt
(SelectorGroupChat's "select the next role from [...]") gets the first candidate that did not speak last.

Faults on command: ``fail_next`` (any status, optional ``retry-after``), ``stall_next`` (sleep past the
client's timeout), ``drop_next`` (close the connection mid-response), ``fail_always``.
Every request is recorded in ``requests`` unless ``record=False``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import collections
import inspect
import itertools
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import uvicorn

# A responder answers with text, or with tool calls: {"tool_calls": [{"name": ..., "arguments": {...}}]}.
Responder = Callable[["RecordedRequest"], "str | dict[str, Any] | Awaitable[str | dict[str, Any]]"]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

_SELECTOR = re.compile(r"select the next role from (\[[^\]\n]*\])", re.IGNORECASE)
_HISTORY_SPEAKER = re.compile(r"^([^\s:]+):", re.MULTILINE)


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str | None:
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def temperature(self) -> float | None:
        return self.body.get("temperature")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    def tool_results(self) -> list[str]:
        """The tool results in the request, oldest first (what earlier tool calls answered)."""
        return [_content_text(m.get("content")) for m in self.messages if m.get("role") == "tool"]

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _content_text(message.get("content"))
        return ""


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering: an error status, a stall, or a dropped connection."""

    kind: Literal["status", "stall", "drop"]
    status: int = 500
    retry_after: float | None = None
    seconds: float = 30.0


@dataclass
class FakeOpenAIServer:
    """An OpenAI-compatible chat completions server in a background thread (see the module docstring).

    Args:
        port: 0 picks a free port.
        latency_ms: Delay before every reply, to imitate a model.
        reply_text: Text of the default reply, before the echo.
        terminate_after: The assistant turn from which the default reply carries the termination
            text (1: the first reply ends the conversation); None never terminates.
        termination_text: Appended to default replies from `terminate_after` on.
        record: Keep every request in `requests`.
    """

    port: int = 0
    latency_ms: float = 0.0
    reply_text: str = "Fake reply."
    terminate_after: int | None = 1
    termination_text: str = "TERMINATE"
    record: bool = True
    models: list[str] = field(default_factory=lambda: ["fake-model", "gpt-4o-mini"])
    responder: Responder | None = None
    requests: list[RecordedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._replies: collections.deque[str] = collections.deque()
        self._faults: collections.deque[Fault] = collections.deque()
        self._sticky_fault: Fault | None = None
        self._ids = itertools.count(1)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue_replies(self, *replies: str) -> None:
        """Answer the next requests with these texts, in order, before any other rule."""
        self._replies.extend(replies)

    def fail_next(self, n: int = 1, *, status: int = 500, retry_after: float | None = None) -> None:
        """Answer the next `n` requests with `status` (and `retry-after` / `retry-after-ms` if given)."""
        self._faults.extend([Fault("status", status=status, retry_after=retry_after)] * n)

    def stall_next(self, n: int = 1, *, seconds: float = 30.0) -> None:
        """Hold the next `n` requests for `seconds` before answering (set it past the client timeout)."""
        self._faults.extend([Fault("stall", seconds=seconds)] * n)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection halfway through the next `n` responses."""
        self._faults.extend([Fault("drop")] * n)

    def fail_always(self, *, status: int = 500, retry_after: float | None = None) -> None:
        """Answer every request with `status` until `reset()`."""
        self._sticky_fault = Fault("status", status=status, retry_after=retry_after)

    def reset(self) -> None:
        """Forget queued replies, faults, the responder and the recorded requests."""
        self._replies.clear()
        self._faults.clear()
        self._sticky_fault = None
        self.responder = None
        self.requests.clear()

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto says
        # TCP, and without it every response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        path, method = scope["path"], scope["method"]
        if method == "GET" and path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            await _send_json(send, 200, {"object": "list", "data": data})
            return
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            await _send_json(send, 404, _error(f"no route {method} {path}", "not_found"))
            return
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            await _send_json(send, 400, _error("body is not JSON", "invalid_request_error"))
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        request = RecordedRequest(method=method, path=path, headers=headers, body=payload)
        if self.record:
            self.requests.append(request)
        await self._answer(request, send)

    async def _answer(self, request: RecordedRequest, send: Send) -> None:
        fault = self._faults.popleft() if self._faults else self._sticky_fault
        if fault is not None and fault.kind == "stall":
            await self._stall(fault.seconds)
        elif fault is not None and fault.kind == "status":
            extra: list[tuple[bytes, bytes]] = []
            if fault.retry_after is not None:
                extra = [
                    (b"retry-after", f"{fault.retry_after:g}".encode()),
                    (b"retry-after-ms", str(int(fault.retry_after * 1000)).encode()),
                ]
            await _send_json(send, fault.status, _error(f"injected {fault.status}", "server_error"), extra)
            return
        elif fault is not None and fault.kind == "drop":
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
            # Returning with the body unfinished makes uvicorn close the connection.
            await send({"type": "http.response.body", "body": b'{"id": "chatcmpl', "more_body": True})
            return
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        reply = await self._reply_text(request)
        completion_id = f"chatcmpl-{next(self._ids)}"
        if isinstance(reply, dict):
            await self._send_tool_calls(send, request, completion_id, reply["tool_calls"])
            return
        text = reply
        usage = _usage(request, text)
        if request.stream:
            await _send_stream(send, request, completion_id, text, usage)
        else:
            await _send_json(send, 200, {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.model or "fake-model",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": text}}],
                "usage": usage,
            })

    async def _stall(self, seconds: float) -> None:
        """Sleep, but let `stop()` end the stall at once instead of waiting out the graceful shutdown."""
        deadline = time.monotonic() + seconds
        # Polling, not an Event: the flag is uvicorn's, set from the thread that calls stop().
        while time.monotonic() < deadline and not (self._server is not None and self._server.should_exit):  # noqa: ASYNC110
            await asyncio.sleep(min(0.05, seconds))

    async def _send_tool_calls(self, send: Send, request: RecordedRequest, completion_id: str,
                               calls: Sequence[dict[str, Any]]) -> None:
        """An assistant message that calls tools (non-streaming requests only)."""
        tool_calls = [{"id": f"call_{completion_id}_{i}", "type": "function",
                       "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
                      for i, call in enumerate(calls)]
        usage = _usage(request, json.dumps(tool_calls))
        await _send_json(send, 200, {
            "id": completion_id, "object": "chat.completion", "created": int(time.time()),
            "model": request.model or "fake-model",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                         "message": {"role": "assistant", "content": None, "tool_calls": tool_calls}}],
            "usage": usage,
        })

    async def _reply_text(self, request: RecordedRequest) -> str | dict[str, Any]:
        if self._replies:
            return self._replies.popleft()
        if self.responder is not None:
            result = self.responder(request)
            return await result if inspect.isawaitable(result) else result
        return self.default_reply(request)

    def default_reply(self, request: RecordedRequest) -> str:
        prompt = "\n".join(_content_text(m.get("content")) for m in request.messages)
        if match := _SELECTOR.search(prompt):
            return _pick_speaker(prompt, ast.literal_eval(match.group(1)))
        turn = 1 + sum(1 for m in request.messages if m.get("role") == "assistant")
        text = f"{self.reply_text} (turn {turn}) You said: {request.last_user_text()[:200]}"
        if self.terminate_after is not None and turn >= self.terminate_after:
            text += f"\n{self.termination_text}"
        return text


class FakeOpenAIProcess:
    """The server in a child process (`python tests/support/openai_server.py`), for benchmarks and tests that
    need it out of their own process.

    Args:
        port: 0 picks a free port.
        latency_ms: Delay before every reply, to imitate a model.
        terminate_after: As for `FakeOpenAIServer`; None never appends the termination text.
        log: Where the server's stderr goes (None: inherited).
    """

    def __init__(self, *, port: int = 0, latency_ms: float = 0.0, terminate_after: int | None = 1,
                 log: Path | None = None) -> None:
        self._args = [sys.executable, __file__, "--port", str(port), "--latency-ms", str(latency_ms),
                      "--terminate-after", str(terminate_after or 0)]
        self._log = log
        self._proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def __enter__(self) -> FakeOpenAIProcess:
        if self._log is None:
            self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, text=True)
        else:
            self._log.parent.mkdir(parents=True, exist_ok=True)
            with self._log.open("w") as errlog:
                self._proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, stderr=errlog, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("READY "):
            self._proc.kill()
            self._proc.wait(timeout=10)
            raise RuntimeError(f"the fake OpenAI server did not start: {line!r}")
        self.base_url = line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)


def _pick_speaker(prompt: str, candidates: list[str]) -> str:
    """The first candidate that did not speak last (SelectorGroupChat lists the history as `name: ...`)."""
    speakers = [s for s in _HISTORY_SPEAKER.findall(prompt) if s in candidates]
    last = speakers[-1] if speakers else None
    return next((c for c in candidates if c != last), candidates[0] if candidates else "")


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _usage(request: RecordedRequest, text: str) -> dict[str, int]:
    prompt = sum(len(_content_text(m.get("content"))) // 4 + 1 for m in request.messages)
    completion = len(text) // 4 + 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        event = await receive()
        chunks.append(event.get("body", b""))
        if not event.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: Any, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_stream(send: Send, request: RecordedRequest, completion_id: str, text: str,
                       usage: dict[str, int]) -> None:
    model = request.model or "fake-model"
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    size = max(1, -(-len(text) // 3))
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
    events.append(chunk({}, "stop"))
    if (request.body.get("stream_options") or {}).get("include_usage"):
        data = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": usage}
        events.append(b"data: " + json.dumps(data).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    for event in events:
        await send({"type": "http.response.body", "body": event, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


class _QuietDrops(logging.Filter):
    """Hide uvicorn's error line for the connections `drop_next` closes on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--terminate-after", type=int, default=1, help="0: never append the termination text")
    parser.add_argument("--termination-text", default="TERMINATE")
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(port=args.port, latency_ms=args.latency_ms, record=False,
                              terminate_after=args.terminate_after or None, termination_text=args.termination_text)
    with server:
        print(f"READY {server.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
