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

import httpx
from autobots.web.testing import _client
from autobots.web.testing.autonomous import workflow_spec

DEFAULT_MESSAGE = "What is 6*7?"
FOLLOW_UP = "And what is 2**8 - 1?"
API = _client.API


def list_messages_paged(client: httpx.Client, session_id: str) -> int:
    """Walk the messages one per page, oldest first, following `last_id` while `has_more`."""
    after: str | None = None
    count = 0
    while True:
        params = {"limit": 1, "order": "asc", **({"after": after} if after else {})}
        page = _client.expect(client.get(f"{API}/sessions/{session_id}/messages", params=params), 200)
        for message in page["data"]:
            count += 1
            print(f"  page {count}: {message['id']} {message['role']}: {message['content'][:60]!r}")
        if not page["has_more"]:
            return count
        after = page["last_id"]


def run(args: argparse.Namespace) -> bool:
    with _client.connect(args) as client:
        workflow = _client.create_workflow(client, workflow_spec(_client.model_entry(args)))
        session = _client.create_session(client, name="history demo", workflow_id=workflow["id"])
        first = _client.send_message(client, session["id"], args.message)
        second = _client.send_message(client, session["id"], FOLLOW_UP)

        print("\n=== sessions (newest first) ===")
        sessions = _client.expect(client.get(f"{API}/sessions", params={"limit": 5, "order": "desc"}), 200)
        for item in sessions["data"]:
            print(f"  {item['id']} {item['name']!r} workflow={item['workflow_id']}")

        print(f"\n=== messages of {session['id']}, limit=1 per page ===")
        pages = list_messages_paged(client, session["id"])

        print("\n=== runs ===")
        runs = _client.expect(client.get(f"{API}/sessions/{session['id']}/runs", params={"order": "asc"}), 200)
        for item in runs["data"]:
            print(f"  {item['id']} {item['status']} usage={item['usage']} cost={item['cost']}")
        last_run = runs["data"][-1]["id"]

        print(f"\n=== events of {last_run} (JSON) ===")
        events = _client.expect(client.get(f"{API}/runs/{last_run}/events"), 200)
        print(json.dumps(events, indent=2))

        resume_after = max(1, len(events) // 2)
        print(f"\n=== resume the stream of {last_run} with Last-Event-ID: {resume_after} ===")
        replay = _client.stream(client, "GET", f"{API}/runs/{last_run}/events",
                                headers={"Last-Event-ID": str(resume_after)})
        replayed = [event.seq for event in replay]
        expected = [event["seq"] for event in events if event["seq"] > resume_after]
        print(f"replayed seqs {replayed} (expected {expected})")
        _client.print_transcript(client, session["id"])
    return _client.completed(first) and _client.completed(second) and pages == 4 and replayed == expected


def main(argv: Sequence[str] | None = None) -> int:
    return _client.run_script(run, _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE), argv)


if __name__ == "__main__":
    sys.exit(main())
