"""The library floor of the pipeline bench: the same five agent calls scheduled by plain asyncio. One JSON line.

    python -m bench.pipeline_library --base-url URL --runs N [--warmup K]

Per run: four AssistantAgents answer the task at once (asyncio.gather), then a fifth gets their four outputs
(labelled, as the service labels them). A fresh agent per call, one OpenAIChatCompletionClient for all, as a
careful script would write it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_ext.models.openai import OpenAIChatCompletionClient

from bench._common import MODEL, TASK
from bench.library_run import cpu_s

BRANCHES = 4


async def ask(client: OpenAIChatCompletionClient, name: str, prompt: str) -> str:
    agent = AssistantAgent(name=name, model_client=client, system_message=f"You are step {name}.")
    result = await agent.run(task=prompt)
    return result.messages[-1].to_text()


async def one_run(client: OpenAIChatCompletionClient) -> float:
    started = time.perf_counter()
    outputs = await asyncio.gather(*(ask(client, f"branch_{i}", TASK) for i in range(BRANCHES)))
    joined = "\n\n".join([TASK, *(f"Input from step 'branch_{i}':\n{text}" for i, text in enumerate(outputs))])
    await ask(client, "join", joined)
    return time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    client = OpenAIChatCompletionClient(model=MODEL, base_url=args.base_url, api_key="not-needed", timeout=120.0)
    for _ in range(args.warmup):
        await one_run(client)
    cpu0, wall0 = cpu_s(), time.perf_counter()
    walls = [await one_run(client) for _ in range(args.runs)]
    return {"runs": args.runs, "calls": args.runs * (BRANCHES + 1), "run_walls": walls,
            "wall_s": time.perf_counter() - wall0, "cpu_s": cpu_s() - cpu0}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
