"""strategy: a declarative state machine over agents; the next state is the first transition the reply matches.

Our own loop over the agents rather than a SelectorGroupChat with a selector function: a state is not an agent
(one agent may serve several states with other instructions), a malformed reply is answered by a re-prompt that
is no agent's turn, and the state a run is in must survive a crash. Each turn is a fresh `AssistantAgent` (the
state's agent, its model client kept for the run) given the task, the accepted replies so far and the state's
instructions, so that a turn depends on the record alone.

The record (every accepted reply with its state) is the strategy's checkpoint, committed with each
`strategy.transition` event; counters are derived from it on every turn, never kept apart, so a resumed run
continues in the state it reached with its counters right.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import jsonschema
from autobots.errors import AutobotsError
from autobots.models.schemas import Persona
from autobots.workflows._strategy_checks import state_agent
from autobots.workflows.builders._context import BuildContext
from autobots.workflows.builders._result import (
    NOT_JSON,
    WorkflowEvent,
    WorkflowResult,
    json_in_reply,
    strip_termination,
)
from autobots.workflows.schemas import END_STATE, ExpectSpec, StateSpec, TransitionSpec, WhenSpec
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core import CancellationToken
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import ChatCompletionClient

StreamItem = BaseAgentEvent | BaseChatMessage | WorkflowEvent | WorkflowResult
_MISSING = object()  # a JSON pointer's part that is absent


class StrategyFormatError(AutobotsError):
    """A state's replies kept missing its `expect` format past `max_errors` re-prompts."""

    code = "strategy_format_error"


class StrategyWorkflow:
    """Runs a validated strategy spec; resumable from its record of accepted replies."""

    resumable = True

    def __init__(self, ctx: BuildContext) -> None:
        assert ctx.spec.strategy is not None
        self.ctx = ctx
        self.strategy = ctx.spec.strategy
        self.record: list[dict[str, Any]] = []  # {state, agent, content}: accepted replies, in order
        self.state = self.strategy.start
        self._clients: dict[str, ChatCompletionClient] = {}

    def resume_from(self, state: Mapping[str, Any], earlier: list[BaseAgentEvent | BaseChatMessage]) -> None:
        self.record = [dict(entry) for entry in state.get("record", [])]
        self.state = str(state.get("state", self.strategy.start))

    async def checkpoint(self) -> Mapping[str, Any] | None:
        return {"record": [dict(entry) for entry in self.record], "state": self.state}

    def counters(self) -> dict[str, int]:
        """Each counter, derived from the record: the replies of its state its condition holds for."""
        return {name: sum(1 for entry in self.record if entry["state"] == counter.state
                          and _holds(counter.when, entry["content"], {}))
                for name, counter in self.strategy.counters.items()}

    async def run_stream(self, task: Sequence[BaseChatMessage], token: CancellationToken) -> AsyncIterator[StreamItem]:
        task_text = task[-1].to_text() if task else ""
        max_steps = min(self.strategy.max_steps, self.ctx.settings.run_max_messages)
        while self.state != END_STATE:
            if len(self.record) >= max_steps:
                yield self._result(incomplete=True)
                return
            spec = self.strategy.states[self.state]
            reply = ""
            async for item in self._accepted_reply(spec, task_text, token):
                if isinstance(item, str):
                    reply = item
                else:
                    yield item
            self.record.append({"state": self.state, "agent": state_agent(self.state, self.strategy),
                                "content": reply})
            target, rule = self._next(spec, reply)
            transition = {"from": self.state, "to": target, "rule": rule, "counters": self.counters()}
            self.state = target
            yield WorkflowEvent("strategy.transition", transition, durable=True)
        yield self._result(incomplete=False)

    async def _accepted_reply(self, spec: StateSpec, task_text: str,
                              token: CancellationToken) -> AsyncIterator[str | BaseChatMessage | WorkflowEvent]:
        """The state's agent's messages, re-prompt events, and last the reply that matches the state's format."""
        prompt = self._prompt(spec, task_text)
        for attempt in range(spec.max_errors + 1):
            message = await self._ask(spec, prompt, token)
            yield message
            reply = strip_termination(message.to_text(), self.ctx.spec.termination.text) or message.to_text()
            problem = _format_problem(spec.expect, reply) if spec.expect is not None else None
            if problem is None:
                yield reply
                return
            if attempt == spec.max_errors:
                raise StrategyFormatError(f"state '{self.state}': {spec.max_errors + 1} replies did not match the "
                                          f"expected format ({_describe(spec.expect)}); last problem: {problem}")
            yield WorkflowEvent("strategy.reprompt", {"state": self.state, "attempt": attempt + 1, "error": problem,
                                                      "expected": _describe(spec.expect)})
            prompt = (f"{prompt}\n\nYour previous reply was:\n{reply}\n\nIt does not have the expected format: "
                      f"{problem}. Answer again with {_describe(spec.expect)}.")
        raise AssertionError("unreachable")

    async def _ask(self, spec: StateSpec, prompt: str, token: CancellationToken) -> BaseChatMessage:
        name = state_agent(self.state, self.strategy)
        agent_spec = self.ctx.spec.agent(name)
        assert agent_spec is not None
        if name not in self._clients:
            persona = Persona(name=name, system_message=agent_spec.system_message,
                              description=agent_spec.description, termination_text=self.ctx.termination_text)
            self._clients[name] = self.ctx.model_client(self.ctx.spec.model_for(agent_spec), persona)
        agent = AssistantAgent(
            name=name, model_client=self._clients[name],
            system_message=agent_spec.system_message or "You are a helpful AI assistant.",
            description=agent_spec.description or name,
            model_context=UnboundedChatCompletionContext(initial_messages=list(self.ctx.history)))
        result = await agent.run(task=prompt, cancellation_token=token)
        replies = [m for m in result.messages if isinstance(m, BaseChatMessage) and m.source == name]
        return replies[-1]

    def _prompt(self, spec: StateSpec, task_text: str) -> str:
        parts = [task_text]
        if self.record:
            parts.append("The conversation so far:\n" + "\n\n".join(
                f"[{entry['agent']} as {entry['state']}]: {entry['content']}" for entry in self.record))
        if spec.instructions:
            parts.append(spec.instructions)
        if spec.expect is not None:
            parts.append(f"Answer with {_describe(spec.expect)}.")
        return "\n\n".join(parts)

    def _next(self, spec: StateSpec, reply: str) -> tuple[str, str]:
        """The first transition that holds for `reply`, and the rule that fired (as written in the spec)."""
        counters = self.counters()
        for index, transition in enumerate(spec.next):
            if transition.otherwise or (transition.when is not None and _holds(transition.when, reply, counters)):
                return transition.to, f"next[{index}]: {_rule_text(transition)}"
        raise StrategyFormatError(f"state '{self.state}': no transition matches the reply, and none is 'otherwise'")

    def _result(self, *, incomplete: bool) -> WorkflowResult:
        reply = self.record[-1]["content"] if self.record else ""
        path = [entry["state"] for entry in self.record]
        return WorkflowResult(stop_reason="max_steps reached" if incomplete else "END reached", reply=reply,
                              summary=reply, incomplete_reason="max_steps" if incomplete else None,
                              metadata={"strategy": {"path": path, "counters": self.counters(),
                                                     "state": self.state}})


def _holds(when: WhenSpec, reply: str, counters: Mapping[str, int]) -> bool:
    if when.contains is not None:
        return when.contains in reply
    if when.regex is not None:
        return re.search(when.regex, reply) is not None
    if when.counter is not None:
        return counters.get(when.counter, 0) >= (when.at_least or 0)
    value = _pointer(json_in_reply(reply), when.json_pointer or "")
    if value is _MISSING:
        return False
    return value in (when.one_of or []) if when.one_of is not None else value == when.equals


def _pointer(document: Any, pointer: str) -> Any:
    """RFC 6901 lookup; `_MISSING` when a part is absent."""
    if document is NOT_JSON:
        return _MISSING
    if pointer == "":
        return document
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return _MISSING
    return document


def _format_problem(expect: ExpectSpec, reply: str) -> str | None:
    """What is wrong with `reply` for `expect` (the parse or validation error), or None when it matches."""
    if expect.format == "regex":
        return None if re.search(expect.pattern or "", reply) else f"it does not match the pattern {expect.pattern!r}"
    if expect.format == "choice":
        answer = reply.strip().strip(".").strip()
        return None if answer in (expect.options or []) else f"{answer[:100]!r} is not one of the options"
    document = json_in_reply(reply)
    if document is NOT_JSON:
        try:
            json.loads(reply.strip())
        except ValueError as err:
            return f"it is not JSON ({err})"
    if expect.json_schema is not None:
        errors = sorted(jsonschema.validators.validator_for(expect.json_schema)(expect.json_schema)
                        .iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path)
            return f"the JSON does not match the schema{f' at /{where}' if where else ''}: {errors[0].message}"
    return None


def _describe(expect: ExpectSpec | None) -> str:
    if expect is None:
        return "any reply"
    if expect.format == "json":
        schema = f" matching this JSON Schema: {json.dumps(expect.json_schema)}" if expect.json_schema else ""
        return f"a JSON object{schema}, and nothing else"
    if expect.format == "regex":
        return f"a reply matching the regular expression {expect.pattern!r}"
    return f"exactly one of these options, and nothing else: {', '.join(expect.options or [])}"


def _rule_text(transition: TransitionSpec) -> str:
    if transition.otherwise:
        return "otherwise"
    assert transition.when is not None
    return json.dumps(transition.when.model_dump(mode="json", by_alias=True), sort_keys=True)
