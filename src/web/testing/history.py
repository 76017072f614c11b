"""History: two messages in one session, then sessions, paginated messages, runs, run events, and replay.

Start a server (`python -m autobots serve`), then:

    python -m autobots.web.testing.history --base-url http://127.0.0.1:8081

It posts `--message` and a follow-up to one autonomous session (streaming both runs), then lists the
caller's sessions, walks the session's messages one page at a time (`limit=1`, `after=<last_id>`), lists
its runs, prints the last run's events as JSON (`GET /runs/{id}/events`), and resumes that run's event
stream with `Last-Event-ID` to show that only the later events are replayed. Without `--model-base-url`
the agents use the offline `scripted` provider (not a language model). Exit code 0 when both runs
completed and the replay started right after the given event id.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from autobots.client import Client
from autobots.web.testing import _client
from autobots.web.testing.autonomous import workflow_spec

DEFAULT_MESSAGE = "What is 6*7?"
FOLLOW_UP = "And what is 2**8 - 1?"


def list_messages_paged(client: Client, session_id: str) -> int:
    """Walk the messages one per page, oldest first, following `last_id` while `has_more`."""
    after: str | None = None
    count = 0
    while True:
        page = client.messages.list(session_id, limit=1, order="asc", after=after)
        for message in page.data:
            count += 1
            print(f"  page {count}: {message.id} {message.role}: {message.content[:60]!r}")
        if not page.has_more:
            return count
        after = page.last_id


def run(args: argparse.Namespace) -> bool:
    with _client.connect(args) as client:
        workflow = _client.create_workflow(client, workflow_spec(_client.model_entry(args)))
        session = _client.create_session(client, name="history demo", workflow_id=workflow.id)
        first = _client.send_message(client, session.id, args.message)
        second = _client.send_message(client, session.id, FOLLOW_UP)

        print("\n=== sessions (newest first) ===")
        for item in client.sessions.list(limit=5, order="desc").data:
            print(f"  {item.id} {item.name!r} workflow={item.workflow_id}")

        print(f"\n=== messages of {session.id}, limit=1 per page ===")
        pages = list_messages_paged(client, session.id)

        print("\n=== runs ===")
        runs = client.runs.list(session.id, order="asc").data
        for item in runs:
            print(f"  {item.id} {item.status} usage={item.usage.model_dump()} cost={item.cost}")
        last_run = runs[-1].id

        print(f"\n=== events of {last_run} (JSON) ===")
        events = client.runs.events(last_run)
        print(json.dumps([event.model_dump(mode="json") for event in events], indent=2))

        resume_after = max(1, len(events) // 2)
        print(f"\n=== resume the stream of {last_run} with Last-Event-ID: {resume_after} ===")
        replay = _client.follow(client, last_run, starting_after=resume_after)
        replayed = [event.seq for event in replay]
        expected = [event.seq for event in events if event.seq > resume_after]
        print(f"replayed seqs {replayed} (expected {expected})")
        _client.print_transcript(client, session.id)
    return _client.completed(first) and _client.completed(second) and pages == 4 and replayed == expected


def main(argv: Sequence[str] | None = None) -> int:
    return _client.run_script(run, _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE), argv)


if __name__ == "__main__":
    sys.exit(main())
