"""An autonomous workflow: a coder assistant and a user proxy that executes the code it receives.

Start a server (`python -m autobots serve`), then:

    python -m autobots.web.testing.autonomous --base-url http://127.0.0.1:8081
    python -m autobots.web.testing.autonomous --yaml            # the same spec, sent as application/yaml
    python -m autobots.web.testing.autonomous --model-base-url http://127.0.0.1:11434/v1 --model qwen2.5-coder

Without `--model-base-url` the agents use the offline `scripted` provider (a deterministic stand-in, not a
language model). `--api-key` (or AUTOBOTS_API_KEY) is needed when the server runs with auth mode `apikey`.
The script stores the workflow, opens a session, posts the task, prints every event of its run as it
streams, then prints the session's transcript. Exit code 0 when the run completed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from autobots.web.testing import _client

DEFAULT_MESSAGE = "What is 12*(3+4)?"


def workflow_spec(model: dict[str, Any]) -> dict[str, Any]:
    """The JSON spec: the proxy sends the task, the coder answers with code, the proxy runs it."""
    return {
        "name": "autonomous-coder",
        "type": "autonomous",
        "models": {"default": model},
        "agents": [
            {"name": "coder", "kind": "assistant", "model": "default",
             "system_message": "You are a python coder. Answer with one python code block that prints the "
                               "answer. When the code output answers the task, give the result and say TERMINATE.",
             "description": "Writes python code."},
            {"name": "user_proxy", "kind": "userproxy", "code_execution": {"timeout_s": 30},
             "description": "Runs the coder's code and reports the output."},
        ],
        "sender": "user_proxy",
        "receiver": "coder",
        "termination": {"text": "TERMINATE", "max_messages": 12, "timeout_s": 300},
        "summary_method": "last",
    }


def workflow_yaml(model: dict[str, Any]) -> str:
    """The same spec as YAML (the model entry as a flow mapping, which is valid YAML)."""
    return f"""\
name: autonomous-coder-yaml
type: autonomous
models:
  default: {json.dumps(model)}
agents:
  - name: coder
    kind: assistant
    model: default
    system_message: >-
      You are a python coder. Answer with one python code block that prints the answer.
      When the code output answers the task, give the result and say TERMINATE.
    description: Writes python code.
  - name: user_proxy
    kind: userproxy
    code_execution:
      timeout_s: 30
    description: Runs the coder's code and reports the output.
sender: user_proxy
receiver: coder
termination:
  text: TERMINATE
  max_messages: 12
  timeout_s: 300
summary_method: last
"""


def run(args: argparse.Namespace) -> bool:
    model = _client.model_entry(args)
    with _client.connect(args) as client:
        if args.yaml:
            workflow = client.workflows.create(workflow_yaml(model))
            print(f"workflow {workflow.id} (from YAML; {workflow.type}: {workflow.name})")
        else:
            workflow = _client.create_workflow(client, workflow_spec(model))
        session = _client.create_session(client, name="autonomous demo", workflow_id=workflow.id)
        events = _client.send_message(client, session.id, args.message)
        _client.print_transcript(client, session.id)
    return _client.completed(events)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _client.build_parser(__doc__.splitlines()[0], DEFAULT_MESSAGE)
    parser.add_argument("--yaml", action="store_true", help="send the spec as application/yaml")
    return _client.run_script(run, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
