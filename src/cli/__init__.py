"""The client side of the `autobots` command line: `run` (live transcripts, an embedded server without --url),
`sessions`, `history`, `gallery` and `publish`, on top of `autobots.client`.

Only argparse and the client's constants load here: `serve` and `worker` start without loading rich.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from autobots.cli.config import ClientSettings
from autobots.client import DEFAULT_BASE_URL


def _handler(name: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from autobots.cli.commands import dispatch

        return dispatch(name, args)

    return handler


def add_client_commands(commands: Any) -> None:
    """Add run, sessions, history, gallery and publish to the top-level parser's subcommands.

    Args:
        commands: What `ArgumentParser.add_subparsers` returned.
    """
    settings = ClientSettings()

    def connection(parser: argparse.ArgumentParser, *, default_url: str | None) -> None:
        fallback = f"else {default_url}" if default_url else "else an embedded server"
        parser.add_argument("--url", default=settings.url or default_url,
                            help=f"the autobots server (default: AUTOBOTS_URL, {fallback})")
        parser.add_argument("--api-key", default=settings.api_key, help="API key (default: AUTOBOTS_API_KEY)")

    run = commands.add_parser("run", help="run a workflow spec on a task and print the transcript live "
                              "(exit 0 completed, 1 failed or cancelled, 2 incomplete)")
    run.add_argument("spec", type=Path, help="the workflow spec, YAML or JSON")
    run.add_argument("task", help="the message to send")
    run.add_argument("--name", help="the session's name (default: the spec's name)")
    connection(run, default_url=None)
    run.set_defaults(handler=_handler("run"))

    sessions = commands.add_parser("sessions", help="list your latest sessions")
    sessions.add_argument("--limit", type=int, default=20)
    connection(sessions, default_url=DEFAULT_BASE_URL)
    sessions.set_defaults(handler=_handler("sessions"))

    history = commands.add_parser("history", help="print a session's messages and agent transcripts")
    history.add_argument("session", help="the session id (ses_…)")
    connection(history, default_url=DEFAULT_BASE_URL)
    history.set_defaults(handler=_handler("history"))

    gallery = commands.add_parser("gallery", help="list published sessions")
    gallery.add_argument("--tag", help="only items with this tag")
    gallery.add_argument("--limit", type=int, default=20)
    connection(gallery, default_url=DEFAULT_BASE_URL)
    gallery.set_defaults(handler=_handler("gallery"))

    publish = commands.add_parser("publish", help="publish a session to the gallery")
    publish.add_argument("session", help="the session id (ses_…)")
    publish.add_argument("--tag", action="append", default=[], help="a tag (repeat for more)")
    connection(publish, default_url=DEFAULT_BASE_URL)
    publish.set_defaults(handler=_handler("publish"))


__all__ = ["add_client_commands"]
