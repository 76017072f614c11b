"""The library baseline: the same AutoGen team run directly, no service. Prints one JSON line.

    python -m bench.library_run --base-url URL --runs N --messages M [--gather] [--warmup K]

Two AssistantAgents in a RoundRobinGroupChat ended only by the message count, with
autogen_ext's OpenAIChatCompletionClient against the fake model server. `--gather` starts all runs at
once with asyncio.gather (the concurrency floor); otherwise runs go one after the other. The model
clients are built once and shared by every run (the cheapest way a script can use the library).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_ext.models.openai import OpenAIChatCompletionClient

from bench._common import MODEL, TASK

# The same system message the service gives an assistant without one.
SYSTEM = "You are a helpful AI assistant. Solve the task step by step. Reply with TERMINATE when the task is done."


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_client(base_url: str, per_run: bool) -> OpenAIChatCompletionClient:
    return OpenAIChatCompletionClient(model=MODEL, base_url=base_url, api_key="not-needed", timeout=120.0,
                                      max_retries=3)


async def one_run(clients: list[OpenAIChatCompletionClient], messages: int) -> tuple[float, int]:
    started = time.perf_counter()
    agents = [AssistantAgent(name=name, model_client=client, system_message=SYSTEM)
              for name, client in zip(("bob", "alice"), clients, strict=True)]
    # MaxMessageTermination counts the task message too: +1 gives `messages` agent messages.
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(messages + 1))
    result = await team.run(task=TASK)
    turns = sum(1 for m in result.messages if m.source != "user")
    return time.perf_counter() - started, turns


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    shared = [make_client(args.base_url, False), make_client(args.base_url, False)]

    def clients() -> list[OpenAIChatCompletionClient]:
        if args.client_per_run:
            return [make_client(args.base_url, True), make_client(args.base_url, True)]
        return shared

    for _ in range(args.warmup):
        await one_run(clients(), args.messages)
    cpu0, wall0 = cpu_s(), time.perf_counter()
    if args.gather:
        results = await asyncio.gather(*(one_run(clients(), args.messages) for _ in range(args.runs)))
    else:
        results = [await one_run(clients(), args.messages) for _ in range(args.runs)]
    wall, cpu = time.perf_counter() - wall0, cpu_s() - cpu0
    turns = sum(t for _, t in results)
    return {"runs": args.runs, "messages": args.messages, "gather": args.gather, "wall_s": wall, "cpu_s": cpu,
            "turns": turns, "run_walls": [w for w, _ in results], "rss_max_mb":
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--gather", action="store_true")
    parser.add_argument("--client-per-run", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)


if __name__ == "__main__":
    main()
