"""The `userproxy` agent: acts for the user without asking a human; runs received code in a sandbox."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from autogen_agentchat.agents import BaseChatAgent
from autogen_agentchat.base import Response
from autogen_agentchat.messages import BaseChatMessage, CodeExecutionEvent, TextMessage
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult

_CODE_BLOCK = re.compile(r"```[ \t]*(python|py|python3|sh|bash|shell)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class CodeExecutionRecord:
    agent: str
    language: str
    code: str
    exit_code: int
    output: str


ExecutorFactory = Callable[[], Awaitable[CodeExecutor]]
ExecutionListener = Callable[[CodeExecutionRecord], Awaitable[None]]


def extract_code_blocks(text: str) -> list[CodeBlock]:
    """Fenced python/shell blocks in a message, in order."""
    return [CodeBlock(code=code, language=language.lower()) for language, code in _CODE_BLOCK.findall(text)]


def format_execution_reply(result: CodeResult) -> str:
    status = "execution succeeded" if result.exit_code == 0 else "execution failed"
    return f"exitcode: {result.exit_code} ({status})\nCode output:\n{result.output}"


class UserProxy(BaseChatAgent):
    """Replies for the user: executes the code blocks of the last message it received, else auto-replies.

    Args:
        name: Agent name.
        description: What other agents (and a speaker selector) are told about it.
        auto_reply: The reply when there is no code to run.
        executor_factory: Opens the run's sandbox executor on first use; None means no code execution.
        on_execution: Told about every execution (for the run's record and event stream).
    """

    def __init__(self, name: str, *, description: str, auto_reply: str,
                 executor_factory: ExecutorFactory | None, on_execution: ExecutionListener | None) -> None:
        super().__init__(name=name, description=description)
        self._auto_reply = auto_reply
        self._executor_factory = executor_factory
        self._on_execution = on_execution

    @property
    def produced_message_types(self) -> Sequence[type[BaseChatMessage]]:
        return (TextMessage,)

    async def on_messages(self, messages: Sequence[BaseChatMessage], cancellation_token: CancellationToken) -> Response:
        blocks = self._blocks_in_last_message(messages)
        if not blocks or self._executor_factory is None:
            return Response(chat_message=TextMessage(content=self._auto_reply, source=self.name))
        executor = await self._executor_factory()
        result = await executor.execute_code_blocks(blocks, cancellation_token)
        if self._on_execution is not None:
            await self._on_execution(CodeExecutionRecord(
                agent=self.name, language=blocks[0].language, code="\n\n".join(b.code for b in blocks),
                exit_code=result.exit_code, output=result.output,
            ))
        event = CodeExecutionEvent(retry_attempt=0, result=result, source=self.name)
        return Response(chat_message=TextMessage(content=format_execution_reply(result), source=self.name),
                        inner_messages=[event])

    def _blocks_in_last_message(self, messages: Sequence[BaseChatMessage]) -> list[CodeBlock]:
        for message in reversed(messages):
            if message.source != self.name:
                return extract_code_blocks(message.to_text())
        return []

    async def on_reset(self, cancellation_token: CancellationToken) -> None:
        return None
