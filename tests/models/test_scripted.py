"""The scripted provider: role behaviour, speaker selection, usage, streaming, and real AutoGen teams."""

from __future__ import annotations

from pathlib import Path

import pytest
from autobots.config import Settings
from autobots.models import ModelConfig, Persona, ScriptedChatCompletionClient, create_model_client
from autogen_agentchat.agents import AssistantAgent, CodeExecutorAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core.models import AssistantMessage, CreateResult, LLMMessage, SystemMessage, UserMessage
from autogen_ext.code_executors.local import LocalCommandLineCodeExecutor

TASK = "what is 12*(3+4)?"


def scripted(name: str, **persona: str) -> ScriptedChatCompletionClient:
    return ScriptedChatCompletionClient(Persona(name=name, **persona))


def conversation(*later: LLMMessage) -> list[LLMMessage]:
    return [SystemMessage(content="You are a helpful AI assistant."), UserMessage(content=TASK, source="user"), *later]


async def reply(client: ScriptedChatCompletionClient, messages: list[LLMMessage]) -> str:
    result = await client.create(messages)
    assert isinstance(result.content, str)
    return result.content


class TestCreateModelClient:
    def test_scripted_provider(self, settings: Settings) -> None:
        config = ModelConfig(provider="scripted", model="demo")
        client = create_model_client(config, persona=Persona(name="coder"), settings=settings)
        assert isinstance(client, ScriptedChatCompletionClient)
        assert client.model_info == {
            "vision": False,
            "function_calling": True,  # it delegates in hierarchies (src/models/_scripted_tools.py)
            "json_output": False,
            "family": "unknown",
            "structured_output": False,
        }

    def test_dump_and_load_component(self) -> None:
        client = scripted("coder", termination_text="DONE")
        loaded = ScriptedChatCompletionClient.load_component(client.dump_component())
        assert isinstance(loaded, ScriptedChatCompletionClient)
        assert loaded.persona == client.persona


class TestCoder:
    async def test_writes_python_for_arithmetic(self) -> None:
        text = await reply(scripted("coder"), conversation())
        assert text == "Here is the code to run:\n\n```python\nprint(12*(3+4))\n```"

    @pytest.mark.parametrize(
        "persona",
        [
            {"name": "alice", "description": "Writes Python code to solve tasks."},
            {"name": "bob", "system_message": "You are a senior software engineer."},
            {"name": "python_dev"},
        ],
    )
    async def test_recognised_from_description_or_system_message(self, persona: dict[str, str]) -> None:
        client = ScriptedChatCompletionClient(Persona(**persona))
        assert "```python\nprint(12*(3+4))\n```" in await reply(client, conversation())

    async def test_reports_execution_output_and_terminates(self) -> None:
        client = scripted("coder")
        code = await reply(client, conversation())
        messages = conversation(
            AssistantMessage(content=code, source="coder"), UserMessage(content="84\n", source="user_proxy")
        )
        assert await reply(client, messages) == "The result is: 84\nTERMINATE"

    async def test_reports_failure_output(self) -> None:
        client = scripted("coder", termination_text="DONE")
        code = await reply(client, conversation())
        output = "The script ran, then exited with an error (POSIX exit code: 1)\nIts output was:\nboom"
        messages = conversation(AssistantMessage(content=code, source="coder"), UserMessage(content=output, source="x"))
        assert await reply(client, messages) == f"The code failed with this output:\n{output}\nDONE"

    async def test_no_report_before_anyone_replied(self) -> None:
        client = scripted("coder")
        code = await reply(client, conversation())
        assert await reply(client, conversation(AssistantMessage(content=code, source="coder"))) == code


class TestOtherRoles:
    async def test_reviewer_approves_and_terminates(self) -> None:
        text = await reply(scripted("critic"), conversation())
        assert text == f"APPROVED: the work on '{TASK}' is complete and the result answers the task.\nTERMINATE"

    @pytest.mark.parametrize("name", ["reviewer", "checker", "verifier"])
    async def test_reviewer_names(self, name: str) -> None:
        assert (await reply(scripted(name), conversation())).startswith("APPROVED: ")

    async def test_planner_plans_and_never_terminates(self) -> None:
        text = await reply(scripted("planner", termination_text="TERMINATE"), conversation())
        assert text.startswith(f"Plan for '{TASK}':\n1. ")
        assert "TERMINATE" not in text

    async def test_writer(self) -> None:
        text = await reply(scripted("writer", termination_text="END"), conversation())
        assert text.startswith(f"Here is a short write-up on '{TASK}'.")
        assert text.endswith("\nEND")

    async def test_researcher(self) -> None:
        messages = [UserMessage(content="Research the history of the Python language", source="user")]
        text = await reply(scripted("researcher"), messages)
        assert text == (
            "Findings on 'Research the history of the Python language':\n"
            "- The question: Research the history of the Python language\n"
            "- Key terms: research, history, python\n"
            "- Next step: hand these findings on for the final answer.\nTERMINATE"
        )

    async def test_generic_assistant_answers_arithmetic(self) -> None:
        assert await reply(scripted("assistant"), conversation()) == "Answer: 12*(3+4) = 84\nTERMINATE"

    async def test_generic_assistant_otherwise(self) -> None:
        messages = [UserMessage(content="Tell me about owls", source="user")]
        text = await reply(scripted("helper"), messages)
        assert text == (
            "Answer: regarding 'Tell me about owls', here is a short, direct reply from the scripted model.\nTERMINATE"
        )

    async def test_name_decides_before_system_message(self) -> None:
        client = scripted("planner", system_message="Break the task down so the coder can write code.")
        assert (await reply(client, conversation())).startswith("Plan for")


class TestSummary:
    async def test_summary_request(self) -> None:
        transcript = (
            "user: what is 12*(3+4)?\n\ncoder: ```python\nprint(12*(3+4))\n```\n\ncoder: The result is: 84\nTERMINATE"
        )
        messages: list[LLMMessage] = [
            SystemMessage(content="Summarize the conversation below in at most five sentences."),
            UserMessage(content=transcript, source="user"),
        ]
        text = await reply(scripted("summarizer"), messages)
        assert text == "Summary: user: what is 12*(3+4)? Outcome: coder: The result is: 84"

    async def test_summary_asked_of_any_persona(self) -> None:
        request = "Please summarize the chat above.\n\nwriter: hello"
        messages: list[LLMMessage] = [UserMessage(content=request, source="user")]
        assert await reply(scripted("writer"), messages) == "Summary: writer: hello"


class TestSelector:
    PROMPT = (
        "You are in a role play game. The following roles are available:\n{roles}.\n"
        "Read the following conversation. Then select the next role from {participants} to play. "
        "Only return the role.\n\n{history}\n\n"
        "Read the above conversation. Then select the next role from {participants} to play. Only return the role.\n"
    )
    ROLES = (
        "planner: Breaks the task into steps.\ncoder: Writes python code.\n"
        "user_proxy: Executes code blocks and reports the output.\ncritic: Reviews the result."
    )
    NAMES = ["planner", "coder", "user_proxy", "critic"]

    async def select(self, history: list[tuple[str, str]], last: str | None = None) -> str:
        candidates = [n for n in self.NAMES if n != last]
        text = "\n".join(f"{source}: {content}\n\n" for source, content in history)
        prompt = self.PROMPT.format(roles=self.ROLES, participants=str(candidates), history=text)
        return await reply(scripted("selector"), [UserMessage(content=prompt, source="user")])

    async def test_planner_first(self) -> None:
        assert await self.select([("user", TASK)]) == "planner"

    async def test_coder_after_planner(self) -> None:
        assert await self.select([("user", TASK), ("planner", "Plan: 1. code")], last="planner") == "coder"

    async def test_executor_after_code_block(self) -> None:
        history = [("user", TASK), ("coder", "```python\nprint(1)\n```")]
        assert await self.select(history, last="coder") == "user_proxy"

    async def test_coder_after_execution(self) -> None:
        history = [("user", TASK), ("coder", "```python\nprint(1)\n```"), ("user_proxy", "1")]
        assert await self.select(history, last="user_proxy") == "coder"

    async def test_reviewer_after_result(self) -> None:
        history = [("user", TASK), ("coder", "```python\nprint(1)\n```"), ("user_proxy", "1"), ("coder", "Result: 1")]
        assert await self.select(history, last="coder") == "critic"

    async def test_round_robin_otherwise_never_last_speaker(self) -> None:
        history = [("user", TASK), ("critic", "Looks fine.")]
        assert await self.select(history, last="critic") == "planner"

    async def test_without_planner_starts_with_coder(self) -> None:
        prompt = self.PROMPT.format(
            roles="writer: Writes.\ncoder: Writes python code.", participants="['writer', 'coder']", history="user: hi"
        )
        assert await reply(scripted("selector"), [SystemMessage(content=prompt)]) == "coder"


class TestUsageAndStreaming:
    async def test_usage_is_deterministic(self) -> None:
        client = scripted("coder")
        first, second = await client.create(conversation()), await client.create(conversation())
        assert first.usage == second.usage
        assert first.usage.prompt_tokens == client.count_tokens(conversation())
        assert first.usage.prompt_tokens == (len("You are a helpful AI assistant.") // 4 + 1) + (len(TASK) // 4 + 1)
        assert first.usage.completion_tokens == len(str(first.content)) // 4 + 1
        assert client.total_usage().prompt_tokens == 2 * first.usage.prompt_tokens
        assert client.actual_usage() == first.usage
        assert client.remaining_tokens(conversation()) == 128_000 - first.usage.prompt_tokens

    async def test_stream_yields_chunks_then_result(self) -> None:
        client = scripted("critic")
        items = [item async for item in client.create_stream(conversation())]
        *chunks, result = items
        assert isinstance(result, CreateResult)
        assert len(chunks) == 3
        assert "".join(str(c) for c in chunks) == result.content


@pytest.mark.filterwarnings("ignore::UserWarning")  # LocalCommandLineCodeExecutor's safety notices
class TestInAutoGenTeams:
    async def test_round_robin_coder_and_executor(self, tmp_path: Path) -> None:
        coder = AssistantAgent("coder", model_client=scripted("coder"), system_message="You write python code.")
        executor = CodeExecutorAgent("user_proxy", code_executor=LocalCommandLineCodeExecutor(work_dir=tmp_path))
        team = RoundRobinGroupChat(
            [coder, executor], termination_condition=TextMentionTermination("TERMINATE") | MaxMessageTermination(10)
        )
        result = await team.run(task=TASK)
        contents = [(m.source, m.to_text()) for m in result.messages]
        assert contents[1] == ("coder", "Here is the code to run:\n\n```python\nprint(12*(3+4))\n```")
        assert contents[2][0] == "user_proxy" and contents[2][1].strip() == "84"
        assert contents[3] == ("coder", "The result is: 84\nTERMINATE")
        assert result.stop_reason is not None and "TERMINATE" in result.stop_reason

    async def test_selector_group_chat(self, tmp_path: Path) -> None:
        agents = [
            AssistantAgent("planner", model_client=scripted("planner"), description="Plans the work."),
            AssistantAgent("coder", model_client=scripted("coder"), description="Writes python code."),
            CodeExecutorAgent("executor", code_executor=LocalCommandLineCodeExecutor(work_dir=tmp_path)),
            AssistantAgent("critic", model_client=scripted("critic"), description="Reviews the result."),
        ]
        team = SelectorGroupChat(
            agents,
            model_client=scripted("selector"),
            termination_condition=TextMentionTermination("TERMINATE") | MaxMessageTermination(12),
        )
        result = await team.run(task="list the first 5 primes")
        speakers = [m.source for m in result.messages]
        assert speakers == ["user", "planner", "coder", "executor", "coder"]
        assert result.messages[-1].to_text() == "The result is: [2, 3, 5, 7, 11]\nTERMINATE"


class TestFormatsAndTools:
    """What strategies, planners and hierarchies ask of the scripted model offline."""

    async def test_a_json_schema_gets_a_matching_object(self) -> None:
        from autobots.models._scripted_formats import formatted_reply

        schema = ('{"type": "object", "required": ["verdict"], '
                  '"properties": {"verdict": {"enum": ["REJECT", "APPROVE"]}}}')
        prompt = f"Answer with a JSON object matching this JSON Schema: {schema}, and nothing else."
        reply = formatted_reply(prompt, "t")
        assert reply == '{"verdict": "APPROVE"}'

    async def test_a_choice_is_one_of_the_options_and_stable_for_a_task(self) -> None:
        from autobots.models._scripted_formats import formatted_reply

        prompt = "Answer with exactly one of these options, and nothing else: heads, tails."
        assert formatted_reply(prompt, "the sea") in ("heads", "tails")
        assert formatted_reply(prompt, "the sea") == formatted_reply(prompt, "the sea")

    async def test_a_manager_delegates_to_each_report_then_answers(self) -> None:
        from autobots.models._scripted_tools import next_tool_call
        from autogen_core import FunctionCall
        from autogen_core.models import AssistantMessage, FunctionExecutionResult, FunctionExecutionResultMessage
        from autogen_core.tools import ToolSchema

        tools = [ToolSchema(name="delegate", description="Give a task. Your reports: research, engineering.",
                            parameters={"type": "object", "properties": {}})]
        messages: list = [UserMessage(content="Build it", source="user")]
        first = next_tool_call(tools, messages, name="board", task="Build it")
        assert first is not None and first.name == "delegate"
        assert first.arguments == '{"to": "research", "task": "Build it"}'
        messages += [AssistantMessage(content=[first], source="board"), FunctionExecutionResultMessage(
            content=[FunctionExecutionResult(content="found", name="delegate", call_id=first.id)])]
        second = next_tool_call(tools, messages, name="board", task="Build it")
        assert isinstance(second, FunctionCall) and '"to": "engineering"' in second.arguments
        messages += [AssistantMessage(content=[second], source="board"), FunctionExecutionResultMessage(
            content=[FunctionExecutionResult(content="built", name="delegate", call_id=second.id)])]
        assert next_tool_call(tools, messages, name="board", task="Build it") is None
