"""Shared pieces of the client scripts: arguments, the model section, the steps every demo takes, printing.

The scripts talk to a running server with `autobots.client.Client`, as any Python caller would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from autobots.client import AutobotsClientError, Client, Message, RunEvent, Session, Workflow

DEFAULT_BASE_URL = "http://127.0.0.1:8081"
FINAL_EVENTS = frozenset({"run.completed", "run.incomplete", "run.failed", "run.cancelled"})


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


def connect(args: argparse.Namespace) -> Client:
    return Client(args.base_url, api_key=args.api_key, timeout_s=args.timeout)


def create_workflow(client: Client, spec: dict[str, Any]) -> Workflow:
    workflow = client.workflows.create(spec)
    print(f"workflow {workflow.id} ({workflow.type}: {workflow.name})")
    return workflow


def create_session(client: Client, *, name: str, workflow_id: str) -> Session:
    session = client.sessions.create(name=name, workflow_id=workflow_id)
    print(f"session {session.id} ({name})")
    return session


def print_event(event: RunEvent) -> None:
    """One line (or block) per event: who said what, which code ran with which exit code."""
    data = event.data
    if event.type == "message":
        print(f"[{event.seq}] {data.get('source')}: {data.get('content')}")
    elif event.type == "code.execution":
        print(f"[{event.seq}] code.execution by {data.get('agent')} (exit code {data.get('exit_code')}):")
        print(_indent(str(data.get("code", "")).rstrip()))
        print(_indent("output: " + str(data.get("output", "")).rstrip()))
    elif event.type in FINAL_EVENTS:
        detail = data.get("stop_reason") or data.get("error") or ""
        print(f"[{event.seq}] {event.type} usage={data.get('usage')} cost={data.get('cost')} {detail}")
    else:
        print(f"[{event.seq}] {event.type} {json.dumps(data)}")


def follow(client: Client, run_id: str, *, starting_after: int = 0) -> list[RunEvent]:
    """Print every event of the run as it arrives, until `done`, and return them all."""
    events: list[RunEvent] = []
    for event in client.runs.stream(run_id, starting_after=starting_after):
        print_event(event)
        events.append(event)
    return events


def send_message(client: Client, session_id: str, content: str) -> list[RunEvent]:
    """Send the message and follow its run's event stream until `done`."""
    print(f"\n>>> user: {content}")
    run = client.messages.send(session_id, content).run
    print(f"run {run.id} (streaming)")
    return follow(client, run.id)


def run_demo(args: argparse.Namespace, spec: dict[str, Any], *, name: str) -> bool:
    """Store `spec`, open a session on it, stream one message's run, print the transcript."""
    with connect(args) as client:
        workflow = create_workflow(client, spec)
        session = create_session(client, name=name, workflow_id=workflow.id)
        events = send_message(client, session.id, args.message)
        print_transcript(client, session.id)
    return completed(events)


def completed(events: Sequence[RunEvent]) -> bool:
    return any(e.type == "run.completed" for e in events) and not any(
        e.type in {"run.failed", "run.cancelled"} for e in events)


def print_transcript(client: Client, session_id: str) -> list[Message]:
    """Every message of the session, oldest first, with the reply's inner transcript and code runs."""
    messages = list(client.messages.iterate(session_id))
    print(f"\n=== transcript of {session_id} ({len(messages)} messages) ===")
    for message in messages:
        print(f"{message.role}: {message.content}")
        meta = message.metadata
        for inner in meta.get("messages") or []:
            print(_indent(f"{inner.get('source')}: {inner.get('content')}"))
        for run in meta.get("code_executions") or []:
            print(_indent(f"code (exit code {run.get('exit_code')}): {str(run.get('code', '')).strip()}"))
        if message.role == "assistant":
            print(_indent(f"usage={meta.get('usage')} cost={meta.get('cost')} stop={meta.get('stop_reason')}"))
    return messages


def run_script(body: Callable[[argparse.Namespace], bool], parser: argparse.ArgumentParser,
               argv: Sequence[str] | None) -> int:
    """Parse, run `body`, and turn its verdict into an exit code; API and connection errors print and give 1."""
    args = parse_args(parser, argv)
    try:
        ok = body(args)
    except AutobotsClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("\nOK" if ok else "\nFAILED: the run did not complete")
    return 0 if ok else 1


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
