"""A responder for the fake OpenAI server that acts per model name: how long each model thinks, what it says
next, and a record of every call (model, start, end, prompt), so that tests can see which calls overlapped.

    script = ModelScript({"slow-model": 0.5})
    fake_server.responder = script
    script.replies["coder-model"] = ["```python\nprint(1/0)\n```", "```python\nprint(2)\n```"]

Without a queued reply a model echoes what it was given: `[<model>] done with: <last user message>`. A model
that must fail is best given an unreachable `base_url` (a real connection error), or `fail_next` on the server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from tests.support.openai_server import RecordedRequest

Call = tuple[str, float, float, str]


class ModelScript:
    """Per model name: how long to think and what to say (queued replies, else an echo of the prompt); every
    call is kept as (model, start, end, prompt)."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.calls: list[Call] = []
        # Text, or tool calls ({"tool_calls": [{"name": ..., "arguments": {...}}]}), per model, in order.
        self.replies: dict[str, list[str | dict[str, Any]]] = {}
        # Per model: the reply as a function of the request, for answers that must not depend on call order.
        self.answers: dict[str, Callable[[RecordedRequest], str | dict[str, Any]]] = {}

    async def __call__(self, request: RecordedRequest) -> str | dict[str, Any]:
        model = request.model or "?"
        started = time.monotonic()
        await asyncio.sleep(self.delays.get(model, 0.0))
        queued = self.replies.get(model)
        if model in self.answers:
            text = self.answers[model](request)
        else:
            text = queued.pop(0) if queued else f"[{model}] done with: {request.last_user_text()}"
        self.calls.append((model, started, time.monotonic(), request.last_user_text()))
        return text

    def calls_of(self, model: str) -> list[Call]:
        return [call for call in self.calls if call[0] == model]
