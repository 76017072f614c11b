"""The client commands of the command line: run, sessions, history, gallery, publish (parsed in `__init__`)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from autobots.cli._embedded import EmbeddedServerError, embedded_server
from autobots.cli._render import TranscriptPrinter
from autobots.client import AutobotsClientError, Client
from rich.console import Console
from rich.table import Table

EXIT_CODES = {"completed": 0, "incomplete": 2}  # any other final status (failed, cancelled) exits 1
ERROR_EXIT = 1
INTERRUPTED_EXIT = 130


class SpecError(ValueError):
    """The workflow spec file cannot be read or is not a mapping."""


def load_spec(path: Path) -> dict[str, Any]:
    """A workflow spec from a YAML or JSON file (JSON is YAML)."""
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read the workflow spec {path}: {exc}") from exc
    if not isinstance(spec, dict):
        raise SpecError(f"the workflow spec {path} must be a mapping, not {type(spec).__name__}")
    return spec


def _stamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


@contextmanager
def _server_url(url: str | None, console: Console) -> Iterator[str]:
    if url:
        yield url
        return
    with console.status("starting an embedded server…"), embedded_server() as embedded:
        console.print(f"[dim]embedded server at {embedded} (temporary database)[/]")
        yield embedded


def _client(args: argparse.Namespace, url: str) -> Client:
    return Client(url, api_key=args.api_key)


def run_spec(args: argparse.Namespace, console: Console) -> int:
    """Open a session on the spec, send the task, print the run live; the exit code says how it ended."""
    spec = load_spec(args.spec)
    with _server_url(args.url, console) as url, _client(args, url) as client:
        session = client.sessions.create(workflow=spec, name=args.name or spec.get("name"))
        run = client.messages.send(session.id, args.task).run
        console.print(f"[dim]session {session.id} · run {run.id}[/]\n")
        printer = TranscriptPrinter(console)
        try:
            with console.status("waiting for the agents…"):
                for event in client.runs.stream(run.id):
                    printer.event(event)
        except KeyboardInterrupt:
            client.runs.cancel(run.id)
            console.print("[red]interrupted: the run was asked to stop[/]")
            return INTERRUPTED_EXIT
        final = client.runs.get(run.id)
        console.print()
        printer.summary(final)
        return EXIT_CODES.get(final.status, ERROR_EXIT)


def list_sessions(args: argparse.Namespace, console: Console) -> int:
    """A table of the caller's latest sessions."""
    with _client(args, args.url) as client:
        page = client.sessions.list(limit=args.limit, order="desc")
    table = Table("id", "name", "workflow", "created", "updated", title="sessions", title_justify="left")
    for session in page.data:
        table.add_row(session.id, session.name or "", session.workflow_id or "", _stamp(session.created_at),
                      _stamp(session.updated_at))
    console.print(table if page.data else "no sessions")
    if page.has_more:
        console.print(f"[dim]more than {len(page.data)}: use --limit[/]")
    return 0


def show_history(args: argparse.Namespace, console: Console) -> int:
    """Every message of a session, oldest first, with the agents' inner transcript."""
    printer = TranscriptPrinter(console)
    with _client(args, args.url) as client:
        session = client.sessions.get(args.session)
        console.print(f"[bold]session {session.id}[/] {session.name or ''}")
        count = 0
        for message in client.messages.iterate(session.id):
            printer.message(message)
            count += 1
    if not count:
        console.print("no messages")
    return 0


def list_gallery(args: argparse.Namespace, console: Console) -> int:
    """A table of published sessions, optionally with a tag."""
    with _client(args, args.url) as client:
        page = client.gallery.list(tag=args.tag, limit=args.limit, order="desc")
    table = Table("id", "session", "tags", "messages", "published by", "created", title="gallery",
                  title_justify="left")
    for item in page.data:
        table.add_row(item.id, str(item.session.get("name") or item.session.get("id") or ""), ", ".join(item.tags),
                      str(len(item.messages)), item.published_by, _stamp(item.created_at))
    console.print(table if page.data else "the gallery is empty" + (f" for tag {args.tag!r}" if args.tag else ""))
    return 0


def publish_session(args: argparse.Namespace, console: Console) -> int:
    """Publish a session to the gallery with its tags."""
    with _client(args, args.url) as client:
        item = client.gallery.publish(args.session, args.tag or [])
    console.print(f"published {item.id} (session {item.session.get('id', args.session)}, "
                  f"tags: {', '.join(item.tags) or 'none'})")
    return 0


def dispatch(name: str, args: argparse.Namespace) -> int:
    """Run the command `name`; client, spec and server errors are one line on stderr and exit code 1."""
    command = {"run": run_spec, "sessions": list_sessions, "history": show_history, "gallery": list_gallery,
               "publish": publish_session}[name]
    try:
        return command(args, Console(highlight=False))
    except (AutobotsClientError, SpecError, EmbeddedServerError) as exc:
        Console(stderr=True, highlight=False).print(f"[red]autobots:[/] {exc}", markup=True)
        return ERROR_EXIT
