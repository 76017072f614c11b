"""A group chat: planner, coder, executor (runs code) and critic; the model picks each next speaker.

Start a server (`python -m autobots serve`), then:

    python -m autobots.web.testing.groupchat --base-url http://127.0.0.1:8081
    python -m autobots.web.testing.groupchat --model-base-url http://127.0.0.1:11434/v1 --model llama3.1

`speaker_selection: auto` asks the model to choose the next speaker from the agents' descriptions, so
the descriptions matter. Without `--model-base-url` the agents use the offline `scripted` provider (a
deterministic stand-in, not a language model). `--api-key` (or AUTOBOTS_API_KEY) is needed with auth
mode `apikey`. Prints the streamed events, then the transcript; exit code 0 when the run completed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from autobots.web.testing import _client

DEFAULT_MESSAGE = "Plan it, compute 2**10 + 3*7 in python, then check the result."


def workflow_spec(model: dict[str, Any]) -> dict[str, Any]:
    """Four members; the executor runs the coder's code blocks in the server's sandbox."""
    return {
        "name": "plan-code-run-review",
        "type": "groupchat",
        "models": {"default": model},
        "agents": [
            {"name": "planner", "kind": "assistant", "model": "default",
             "system_message": "You plan. Break the task into short steps for the coder.",
             "description": "Plans the work; speaks first."},
            {"name": "coder", "kind": "assistant", "model": "default",
             "system_message": "You write python code in one code block that prints the result. "
                               "When the output answers the task, state the answer and say TERMINATE.",
             "description": "Writes python code."},
            {"name": "executor", "kind": "userproxy", "code_execution": {"timeout_s": 30},
             "description": "Runs the coder's code and reports the output."},
            {"name": "critic", "kind": "assistant", "model": "default",
             "system_message": "You review the result. Say TERMINATE when it is correct.",
             "description": "Reviews the result."},
        ],
        "groupchat": {"agents": ["planner", "coder", "executor", "critic"], "speaker_selection": "auto",
                      "allow_repeat_speaker": False},
        "termination": {"text": "TERMINATE", "max_messages": 16, "timeout_s": 300},
        "summary_method": "last",
    }


def run(args: argparse.Namespace) -> bool:
    return _client.run_demo(args, workflow_spec(_client.model_entry(args)), name="groupchat demo")


def main(argv: Sequence[str] | None = None) -> int:
    return _client.run_script(run, _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE), argv)


if __name__ == "__main__":
    sys.exit(main())
