"""The openai provider: the real autogen-ext OpenAIChatCompletionClient against the fake server."""

from __future__ import annotations

import openai
import pytest
from autobots.config import Settings
from autobots.models import ModelConfig, Persona, create_model_client
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core.models import ChatCompletionClient, CreateResult, UserMessage
from autogen_ext.models.openai import OpenAIChatCompletionClient
from pydantic import SecretStr

from tests.support.openai_server import FakeOpenAIServer

PERSONA = Persona(name="assistant")

pytestmark = pytest.mark.filterwarnings("ignore:Resolved model mismatch")


def client_for(server: FakeOpenAIServer, settings: Settings, **config: object) -> ChatCompletionClient:
    fields = {"provider": "openai", "model": "fake-model", "base_url": server.base_url, **config}
    entry = ModelConfig.model_validate(fields)
    return create_model_client(entry, persona=PERSONA, settings=settings)


async def ask(client: ChatCompletionClient, text: str = "hello") -> CreateResult:
    try:
        return await client.create([UserMessage(content=text, source="user")])
    finally:
        await client.close()


class TestRequest:
    async def test_reaches_server_with_model_temperature_and_key(
        self, fake_openai: FakeOpenAIServer, settings: Settings
    ) -> None:
        client = client_for(fake_openai, settings, model="gpt-4o-mini", temperature=0.2, max_tokens=50,
                            api_key="sk-inline")
        assert isinstance(client, OpenAIChatCompletionClient)
        result = await ask(client, "what is 2+2?")
        assert result.content == "Fake reply. (turn 1) You said: what is 2+2?\nTERMINATE"
        assert result.usage.prompt_tokens == len("what is 2+2?") // 4 + 1
        assert result.usage.completion_tokens == len(str(result.content)) // 4 + 1
        [request] = fake_openai.chat_requests()
        assert request.model == "gpt-4o-mini"
        assert request.temperature == 0.2
        assert request.body["max_tokens"] == 50
        assert request.authorization == "Bearer sk-inline"
        assert request.messages[-1]["content"] == "what is 2+2?"

    async def test_key_from_api_key_env(
        self, fake_openai: FakeOpenAIServer, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TEST_MODEL_KEY", "sk-from-env")
        await ask(client_for(fake_openai, settings, api_key_env="TEST_MODEL_KEY"))
        assert fake_openai.chat_requests()[0].authorization == "Bearer sk-from-env"

    async def test_local_server_without_key_gets_placeholder(
        self, fake_openai: FakeOpenAIServer, settings: Settings
    ) -> None:
        await ask(client_for(fake_openai, settings))
        assert fake_openai.chat_requests()[0].authorization == "Bearer not-needed"

    async def test_inline_key_beats_environment(
        self, fake_openai: FakeOpenAIServer, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        await ask(client_for(fake_openai, settings, api_key=SecretStr("sk-inline")))
        assert fake_openai.chat_requests()[0].authorization == "Bearer sk-inline"


class TestModelInfo:
    async def test_unknown_model_is_text_only(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        client = client_for(fake_openai, settings, model="my-local-llama")
        assert client.model_info == {
            "vision": False,
            "function_calling": False,
            "json_output": False,
            "structured_output": False,
            "family": "unknown",
        }
        assert (await ask(client)).content.startswith("Fake reply.")  # type: ignore[union-attr]
        assert fake_openai.chat_requests()[0].model == "my-local-llama"

    def test_capabilities_become_model_info(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        client = client_for(fake_openai, settings, model="qwen2.5", capabilities=["function_calling", "json_output"])
        info = client.model_info
        assert (info["function_calling"], info["json_output"], info["vision"]) == (True, True, False)

    def test_known_model_keeps_library_info(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        client = client_for(fake_openai, settings, model="gpt-4o-mini")
        assert client.model_info["family"] == "gpt-4o"
        assert client.model_info["function_calling"] is True


class TestStreaming:
    async def test_stream_with_usage(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        client = client_for(fake_openai, settings)
        items = [i async for i in client.create_stream([UserMessage(content="hi", source="user")], include_usage=True)]
        await client.close()
        *chunks, result = items
        assert isinstance(result, CreateResult)
        assert "".join(str(c) for c in chunks) == result.content == "Fake reply. (turn 1) You said: hi\nTERMINATE"
        assert result.usage.completion_tokens == len(str(result.content)) // 4 + 1
        assert fake_openai.chat_requests()[0].stream


class TestRetries:
    async def test_500_then_success_is_retried(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        fake_openai.fail_next(1, status=500, retry_after=0.01)
        result = await ask(client_for(fake_openai, settings))
        assert str(result.content).startswith("Fake reply.")
        assert len(fake_openai.chat_requests()) == 2

    async def test_429_with_retry_after_is_retried(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        fake_openai.fail_next(2, status=429, retry_after=0.01)
        await ask(client_for(fake_openai, settings))
        assert len(fake_openai.chat_requests()) == 3

    async def test_dropped_connection_is_retried(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        fake_openai.drop_next(1)
        await ask(client_for(fake_openai, settings))
        assert len(fake_openai.chat_requests()) == 2

    async def test_always_500_raises_after_retries(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        fake_openai.fail_always(status=500, retry_after=0.01)
        with pytest.raises(openai.InternalServerError) as info:
            await ask(client_for(fake_openai, settings))
        assert info.value.status_code == 500
        assert len(fake_openai.chat_requests()) == 1 + settings.model_max_retries

    async def test_stall_times_out(self, fake_openai: FakeOpenAIServer) -> None:
        fake_openai.stall_next(1, seconds=5)
        settings = Settings(model_max_retries=0, model_timeout_s=0.3)
        with pytest.raises(openai.APITimeoutError):
            await ask(client_for(fake_openai, settings))


class TestInAutoGenTeam:
    async def test_assistant_agent_round_robin(self, fake_openai: FakeOpenAIServer, settings: Settings) -> None:
        fake_openai.terminate_after = 2
        agents = [
            AssistantAgent(name, model_client=client_for(fake_openai, settings), system_message=f"You are {name}.")
            for name in ("alpha", "beta")
        ]
        team = RoundRobinGroupChat(
            agents, termination_condition=TextMentionTermination("TERMINATE") | MaxMessageTermination(10)
        )
        result = await team.run(task="count to three")
        assert [m.source for m in result.messages] == ["user", "alpha", "beta", "alpha"]
        assert result.messages[-1].to_text().endswith("TERMINATE")
        assert all(m.models_usage is not None for m in result.messages[1:])
        first = fake_openai.chat_requests()[0]
        assert first.messages[0] == {"role": "system", "content": "You are alpha."}


def pool_of(client: ChatCompletionClient) -> object:
    return client._client._client  # type: ignore[attr-defined]  # AsyncOpenAI's httpx client


class TestConnectionPools:
    async def test_a_closed_clients_pool_serves_the_next_client_with_its_own_key(
        self, fake_openai: FakeOpenAIServer, settings: Settings
    ) -> None:
        first = client_for(fake_openai, settings, api_key="sk-first")
        await ask(first)
        second = client_for(fake_openai, settings, api_key="sk-second")
        assert pool_of(second) is pool_of(first) and not pool_of(second).is_closed  # type: ignore[attr-defined]
        await ask(second)
        assert [r.authorization for r in fake_openai.chat_requests()] == ["Bearer sk-first", "Bearer sk-second"]

    async def test_clients_in_use_at_once_have_pools_of_their_own(
        self, fake_openai: FakeOpenAIServer, settings: Settings
    ) -> None:
        first, second = client_for(fake_openai, settings), client_for(fake_openai, settings)
        assert pool_of(first) is not pool_of(second)
        await ask(first)
        await ask(second)
