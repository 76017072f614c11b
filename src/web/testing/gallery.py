"""Gallery: run a session, publish it with tags, find it by tag, read it, check no secret leaked, delete it.

Start a server (`python -m autobots serve`), then:

    python -m autobots.web.testing.gallery --base-url http://127.0.0.1:8081 --tag demo

The workflow's model entry carries an inline `api_key` ("sk-test-inline-secret"; the `scripted`
provider ignores keys). The server must never store, return or publish an inline key, so the script
checks that the string appears in no response: the workflow, the session, the transcript, the
published item, the gallery list and the item itself. Without `--model-base-url` the agents use the
offline `scripted` provider (not a language model). Exit code 0 when the run completed, the item was
found by its tag, no response held the key, and the item was deleted.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from typing import TypeVar

from autobots.client import NotFoundError
from autobots.web.testing import _client
from autobots.web.testing.autonomous import workflow_spec
from pydantic import BaseModel

DEFAULT_MESSAGE = "What is 12*(3+4)?"
INLINE_SECRET = "sk-test-inline-secret"

Answer = TypeVar("Answer", bound=BaseModel)


def run(args: argparse.Namespace) -> bool:
    tags = [args.tag, f"run-{uuid.uuid4().hex[:8]}"]
    answers: dict[str, str] = {}

    def keep(label: str, answer: Answer) -> Answer:
        """Remember the answer as JSON; the client's objects keep every field the server sent."""
        answers[label] = answer.model_dump_json()
        return answer

    with _client.connect(args) as client:
        spec = workflow_spec(_client.model_entry(args, api_key=INLINE_SECRET))
        spec["name"] = "gallery-demo"
        workflow = keep("POST /workflows", client.workflows.create(spec))
        print(f"workflow {workflow.id} (inline api_key sent)")
        session = keep("POST /sessions",
                       _client.create_session(client, name="gallery demo", workflow_id=workflow.id))
        events = _client.send_message(client, session.id, args.message)
        keep("GET /workflows/{id}", client.workflows.get(workflow.id))
        keep("GET /sessions/{id}/messages", client.messages.list(session.id))

        item = keep("POST /sessions/{id}/publish", client.gallery.publish(session.id, tags))
        print(f"\npublished {item.id} tags={item.tags} by {item.published_by} ({len(item.messages)} messages)")

        listing = keep("GET /gallery?tag", client.gallery.list(tag=tags[1]))
        found = [entry.id for entry in listing.data]
        print(f"gallery items tagged {tags[1]!r}: {found}")
        fetched = keep("GET /gallery/{id}", client.gallery.get(item.id))
        print(f"item {fetched.id}: session {fetched.session.get('name')!r}, "
              f"{len(fetched.messages)} messages, tags {fetched.tags}")
        for message in fetched.messages:
            print(f"  {message.get('role')}: {str(message.get('content'))[:80]!r}")

        leaks = [label for label, text in answers.items() if INLINE_SECRET in text]
        print(f"inline api key in a response: {leaks or 'nowhere'}")

        client.gallery.delete(item.id)
        try:
            client.gallery.get(item.id)
            gone = 200
        except NotFoundError as exc:
            gone = exc.status_code
        print(f"deleted {item.id}; GET now answers {gone}")
    return _client.completed(events) and found == [item.id] and not leaks and gone == 404


def main(argv: Sequence[str] | None = None) -> int:
    parser = _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE)
    parser.add_argument("--tag", default="autobots-demo", help="a tag to publish with (a unique one is added)")
    return _client.run_script(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
