"""Shared pieces of the client scripts: arguments, the model section, requests, SSE parsing, printing.

The scripts talk to a running server over plain HTTP with httpx, exactly as any client would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_BASE_URL = "http://127.0.0.1:8081"
API = "/api/v1"
SSE = "text/event-stream"


class ApiError(Exception):
    """A response with an unexpected status; the message carries the server's error body."""

    def __init__(self, response: httpx.Response, expected: int) -> None:
        super().__init__(f"{response.request.method} {response.request.url.path} -> {response.status_code} "
                         f"(expected {expected}): {response.text[:2000]}")
        self.response = response


@dataclass(frozen=True)
class SseEvent:
    """One Server-Sent Event of a run stream: `id` is the run event's sequence number."""

    id: int | None
    event: str
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        return int(self.data.get("seq", self.id or 0))

    @property
    def type(self) -> str:
        return str(self.data.get("type", self.event))

    @property
    def payload(self) -> dict[str, Any]:
        inner = self.data.get("data")
        return inner if isinstance(inner, dict) else {}


def build_parser(description: str, default_message: str) -> argparse.ArgumentParser:
    """The options every script takes; AUTOBOTS_BASE_URL and AUTOBOTS_API_KEY supply the defaults."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", default=os.environ.get("AUTOBOTS_BASE_URL") or DEFAULT_BASE_URL,
                        help="the server (default: $AUTOBOTS_BASE_URL or %(default)s)")
    parser.add_argument("--api-key", default=os.environ.get("AUTOBOTS_API_KEY") or None,
                        help="API key for auth mode 'apikey' (default: $AUTOBOTS_API_KEY)")
    parser.add_argument("--message", default=default_message, help="the task (default: %(default)r)")
    parser.add_argument("--model-base-url", default=None,
                        help="use provider 'openai' at this OpenAI-compatible URL (Ollama, vLLM, ...) "
                             "instead of the offline 'scripted' stand-in")
    parser.add_argument("--model", default=None, help="model name for --model-base-url")
    parser.add_argument("--model-api-key-env", default=None,
                        help="name of the server-side environment variable holding the model's key")
    parser.add_argument("--timeout", type=float, default=300.0, help="HTTP timeout in seconds")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.model_base_url and not args.model:
        parser.error("--model-base-url needs --model NAME")
    return args


def model_entry(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The `default` model: scripted unless --model-base-url names an OpenAI-compatible server."""
    if args.model_base_url:
        entry: dict[str, Any] = {"provider": "openai", "model": args.model, "base_url": args.model_base_url,
                                 "temperature": 0.2}
        if args.model_api_key_env:
            entry["api_key_env"] = args.model_api_key_env
    else:
        entry = {"provider": "scripted", "model": "scripted",
                 "price": {"prompt_per_1k": 0.00015, "completion_per_1k": 0.0006}}
    entry.update(extra)
    return entry


def connect(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.base_url.rstrip("/"), headers=headers, timeout=args.timeout)


def expect(response: httpx.Response, status: int) -> Any:
    """The decoded JSON body, or ApiError when the status is not `status`."""
    if response.status_code != status:
        raise ApiError(response, status)
    return response.json() if response.content else None


def new_idempotency_key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


def create_workflow(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    workflow = expect(client.post(f"{API}/workflows", json=spec, headers=new_idempotency_key()), 201)
    print(f"workflow {workflow['id']} ({workflow['type']}: {workflow['name']})")
    return workflow  # type: ignore[no-any-return]


def create_session(client: httpx.Client, *, name: str, workflow_id: str) -> dict[str, Any]:
    body = {"name": name, "workflow_id": workflow_id}
    session = expect(client.post(f"{API}/sessions", json=body, headers=new_idempotency_key()), 201)
    print(f"session {session['id']} ({name})")
    return session  # type: ignore[no-any-return]


def iter_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Parse an event stream: `id:`, `event:`, `data:` fields, a blank line ends an event; skip comments."""
    event_id: int | None = None
    event_type = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseEvent(id=event_id, event=event_type, data=json.loads("\n".join(data)))
            event_id, event_type, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "id":
            event_id = int(value) if value.isdigit() else None
        elif field == "event":
            event_type = value
        elif field == "data":
            data.append(value)
    if data:
        yield SseEvent(id=event_id, event=event_type, data=json.loads("\n".join(data)))


def print_event(event: SseEvent) -> None:
    """One line (or block) per event: who said what, which code ran with which exit code."""
    data = event.payload
    if event.type == "message":
        print(f"[{event.seq}] {data.get('source')}: {data.get('content')}")
    elif event.type == "code.execution":
        print(f"[{event.seq}] code.execution by {data.get('agent')} (exit code {data.get('exit_code')}):")
        print(_indent(str(data.get("code", "")).rstrip()))
        print(_indent("output: " + str(data.get("output", "")).rstrip()))
    elif event.type in {"run.completed", "run.incomplete", "run.failed", "run.cancelled"}:
        detail = data.get("stop_reason") or data.get("error") or ""
        print(f"[{event.seq}] {event.type} usage={data.get('usage')} cost={data.get('cost')} {detail}")
    else:
        print(f"[{event.seq}] {event.type} {json.dumps(data)}")


def stream(client: httpx.Client, method: str, url: str, *, headers: dict[str, str] | None = None,
           json_body: Any = None, expected: int = 200) -> list[SseEvent]:
    """Send a request with Accept: text/event-stream, print every event as it arrives, return them all."""
    events: list[SseEvent] = []
    with client.stream(method, url, json=json_body, headers={"Accept": SSE, **(headers or {})}) as response:
        if response.status_code != expected:
            response.read()
            raise ApiError(response, expected)
        run_id = response.headers.get("x-run-id")
        if run_id:
            print(f"run {run_id} (streaming)")
        for event in iter_sse(response.iter_lines()):
            print_event(event)
            events.append(event)
            if event.type == "done":
                break
    return events


def send_message(client: httpx.Client, session_id: str, content: str) -> list[SseEvent]:
    """POST the message and follow the run's event stream until `done`."""
    print(f"\n>>> user: {content}")
    return stream(client, "POST", f"{API}/sessions/{session_id}/messages", json_body={"content": content})


def run_demo(args: argparse.Namespace, spec: dict[str, Any], *, name: str) -> bool:
    """Store `spec`, open a session on it, stream one message's run, print the transcript."""
    with connect(args) as client:
        workflow = create_workflow(client, spec)
        session = create_session(client, name=name, workflow_id=workflow["id"])
        events = send_message(client, session["id"], args.message)
        print_transcript(client, session["id"])
    return completed(events)


def completed(events: Sequence[SseEvent]) -> bool:
    return any(e.type == "run.completed" for e in events) and not any(
        e.type in {"run.failed", "run.cancelled"} for e in events)


def print_transcript(client: httpx.Client, session_id: str) -> list[dict[str, Any]]:
    """Every message of the session, oldest first, with the reply's inner transcript and code runs."""
    messages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, "order": "asc", **({"after": after} if after else {})}
        page = expect(client.get(f"{API}/sessions/{session_id}/messages", params=params), 200)
        messages.extend(page["data"])
        if not page["has_more"]:
            break
        after = page["last_id"]
    print(f"\n=== transcript of {session_id} ({len(messages)} messages) ===")
    for message in messages:
        print(f"{message['role']}: {message['content']}")
        meta = message.get("metadata") or {}
        for inner in meta.get("messages") or []:
            print(_indent(f"{inner.get('source')}: {inner.get('content')}"))
        for run in meta.get("code_executions") or []:
            print(_indent(f"code (exit code {run.get('exit_code')}): {str(run.get('code', '')).strip()}"))
        if message["role"] == "assistant":
            print(_indent(f"usage={meta.get('usage')} cost={meta.get('cost')} stop={meta.get('stop_reason')}"))
    return messages


def run_script(body: Callable[[argparse.Namespace], bool], parser: argparse.ArgumentParser,
               argv: Sequence[str] | None) -> int:
    """Parse, run `body`, and turn its verdict into an exit code; HTTP problems print and give 1."""
    args = parse_args(parser, argv)
    try:
        ok = body(args)
    except (ApiError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\nOK" if ok else "\nFAILED: the run did not complete")
    return 0 if ok else 1


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
