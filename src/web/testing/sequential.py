"""A sequential workflow: a researcher, then a writer who gets the task plus the researcher's summary.

Start a server (`python -m autobots serve`), then:

    python -m autobots.web.testing.sequential --base-url http://127.0.0.1:8081
    python -m autobots.web.testing.sequential --model-base-url http://127.0.0.1:8000/v1 --model my-vllm-model

Each step is a conversation between the built-in user proxy and one agent; `summary_method: last` carries
the last message of a step over to the next. Without `--model-base-url` the agents use the offline
`scripted` provider (a deterministic stand-in, not a language model). `--api-key` (or AUTOBOTS_API_KEY)
is needed with auth mode `apikey`. Prints the streamed events, then the transcript; exit code 0 when the
run completed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from autobots.web.testing import _client

DEFAULT_MESSAGE = "Write a short note on why the number zero matters in positional notation."


def workflow_spec(model: dict[str, Any]) -> dict[str, Any]:
    """researcher -> writer; every step ends on TERMINATE or after a few messages."""
    return {
        "name": "research-then-write",
        "type": "sequential",
        "models": {"default": model},
        "agents": [
            {"name": "researcher", "kind": "assistant", "model": "default",
             "system_message": "You are a researcher. List the key facts for the task in a few bullet points, "
                               "then say TERMINATE.",
             "description": "Collects the facts."},
            {"name": "writer", "kind": "assistant", "model": "default",
             "system_message": "You are a writer. Turn the researcher's findings into one short paragraph, "
                               "then say TERMINATE.",
             "description": "Writes the final text."},
        ],
        "steps": ["researcher", "writer"],
        "termination": {"text": "TERMINATE", "max_messages": 6, "timeout_s": 300},
        "summary_method": "last",
    }


def run(args: argparse.Namespace) -> bool:
    return _client.run_demo(args, workflow_spec(_client.model_entry(args)), name="sequential demo")


def main(argv: Sequence[str] | None = None) -> int:
    return _client.run_script(run, _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE), argv)


if __name__ == "__main__":
    sys.exit(main())
