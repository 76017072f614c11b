"""Pricing, the default model, configuration errors, and how each provider's client is constructed."""

from __future__ import annotations

import pytest
from anthropic import AsyncAnthropic
from autobots.config import DefaultModel, Settings
from autobots.models import (
    ModelConfig,
    ModelConfigError,
    Persona,
    Price,
    compute_cost,
    create_model_client,
    is_scripted,
    resolve_default_model,
)
from autogen_ext.models.anthropic import AnthropicChatCompletionClient
from autogen_ext.models.ollama import OllamaChatCompletionClient
from autogen_ext.models.openai import AzureOpenAIChatCompletionClient, OpenAIChatCompletionClient
from openai import AsyncAzureOpenAI
from pydantic import SecretStr

PERSONA = Persona(name="assistant")


def build(settings: Settings, **config: object) -> object:
    return create_model_client(ModelConfig.model_validate(config), persona=PERSONA, settings=settings)


def error_fields(err: ModelConfigError) -> dict[str, object]:
    return {"status": err.status, "type": err.type, "code": err.code, "param": err.param, "message": err.message}


class TestComputeCost:
    def test_priced(self) -> None:
        price = Price(prompt_per_1k=0.00015, completion_per_1k=0.0006)
        assert compute_cost(2000, 500, price) == pytest.approx(0.0006)

    def test_no_price_is_free(self) -> None:
        assert compute_cost(123_456, 789, None) == 0.0

    def test_zero_tokens(self) -> None:
        assert compute_cost(0, 0, Price(prompt_per_1k=1, completion_per_1k=1)) == 0.0

    def test_no_float_noise(self) -> None:
        assert compute_cost(100, 200, Price(prompt_per_1k=1, completion_per_1k=1)) == 0.3


class TestResolveDefaultModel:
    def test_auto_with_key_is_openai(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        config = resolve_default_model(Settings())
        expected = ModelConfig(provider="openai", model="gpt-4o-mini", api_key_env="OPENAI_API_KEY")
        assert config == expected.as_operator_entry()
        assert not is_scripted(config)

    def test_auto_without_key_is_scripted(self) -> None:
        config = resolve_default_model(Settings())
        assert config == ModelConfig(provider="scripted", model="scripted").as_operator_entry()
        assert is_scripted(config)

    def test_auto_reads_the_named_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("TEST_MODEL_KEY", "sk-test")
        settings = Settings(default_model=DefaultModel(api_key_env="TEST_MODEL_KEY", model="gpt-4o"))
        assert resolve_default_model(settings).model_dump(exclude_none=True) == {
            "provider": "openai",
            "model": "gpt-4o",
            "api_key_env": "TEST_MODEL_KEY",
        }

    def test_auto_with_base_url_is_openai_compatible(self) -> None:
        settings = Settings(default_model=DefaultModel(base_url="http://127.0.0.1:11434/v1", model="llama3.2"))
        config = resolve_default_model(settings)
        assert (config.provider, config.model, config.base_url) == ("openai", "llama3.2", "http://127.0.0.1:11434/v1")

    def test_explicit_provider(self) -> None:
        settings = Settings(default_model=DefaultModel(provider="ollama", model="llama3.2"))
        assert resolve_default_model(settings).provider == "ollama"

    def test_unknown_provider(self) -> None:
        with pytest.raises(ModelConfigError) as info:
            resolve_default_model(Settings(default_model=DefaultModel(provider="hal9000")))
        assert error_fields(info.value) == {
            "status": 422,
            "type": "invalid_request_error",
            "code": "invalid_model_config",
            "param": "default_model.provider",
            "message": "default_model.provider 'hal9000' is not one of auto, scripted, openai, azure_openai, "
            "anthropic, ollama",
        }


class TestModelConfigErrors:
    def test_openai_without_key(self, settings: Settings) -> None:
        with pytest.raises(ModelConfigError) as info:
            build(settings, provider="openai", model="gpt-4o")
        assert error_fields(info.value) == {
            "status": 422,
            "type": "invalid_request_error",
            "code": "invalid_model_config",
            "param": "api_key_env",
            "message": "No API key for openai model 'gpt-4o': set the environment variable OPENAI_API_KEY "
            "or give the model an api_key.",
        }

    def test_names_the_configured_variable(self, settings: Settings) -> None:
        with pytest.raises(ModelConfigError) as info:
            build(settings, provider="anthropic", model="claude-3-5-sonnet-20241022", api_key_env="TEST_MODEL_KEY")
        assert info.value.message == (
            "No API key for anthropic model 'claude-3-5-sonnet-20241022': set the environment variable "
            "TEST_MODEL_KEY or give the model an api_key."
        )

    def test_azure_without_endpoint(self, settings: Settings) -> None:
        with pytest.raises(ModelConfigError) as info:
            build(settings, provider="azure_openai", model="gpt-4o", api_key="k")
        assert error_fields(info.value) == {
            "status": 422,
            "type": "invalid_request_error",
            "code": "invalid_model_config",
            "param": "base_url",
            "message": "azure_openai model 'gpt-4o' needs base_url: the resource endpoint, "
            "e.g. https://NAME.openai.azure.com",
        }

    def test_azure_without_key(self, settings: Settings) -> None:
        with pytest.raises(ModelConfigError) as info:
            build(settings, provider="azure_openai", model="gpt-4o", base_url="https://r.openai.azure.com")
        assert "AZURE_OPENAI_API_KEY" in info.value.message

    def test_message_never_holds_a_key(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
        with pytest.raises(ModelConfigError) as info:
            build(settings, provider="azure_openai", model="gpt-4o", api_key="sk-secret-value")
        assert "sk-secret-value" not in str(info.value)


class TestConstruction:
    """Construction only: no request leaves the process."""

    def test_openai(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
        client = build(settings, provider="openai", model="gpt-4o", temperature=0.3)
        assert isinstance(client, OpenAIChatCompletionClient)
        inner = client._client
        assert (inner.api_key, str(inner.base_url)) == ("sk-env", "https://api.openai.com/v1/")
        assert (inner.timeout, inner.max_retries) == (settings.model_timeout_s, settings.model_max_retries)
        assert client._create_args == {"model": "gpt-4o", "timeout": 5.0, "temperature": 0.3}

    def test_azure(self) -> None:
        settings = Settings(model_max_retries=4, model_timeout_s=12.5)
        client = build(
            settings, provider="azure_openai", model="gpt-4o", base_url="https://res.openai.azure.com",
            api_key=SecretStr("k1"), azure_deployment="prod-4o", api_version="2024-06-01", max_tokens=9,
        )
        assert isinstance(client, AzureOpenAIChatCompletionClient)
        inner = client._client
        assert isinstance(inner, AsyncAzureOpenAI)
        assert str(inner.base_url) == "https://res.openai.azure.com/openai/deployments/prod-4o/"
        assert (inner.api_key, inner._api_version, inner.timeout, inner.max_retries) == ("k1", "2024-06-01", 12.5, 4)
        assert client._create_args == {"model": "gpt-4o", "timeout": 12.5, "max_tokens": 9}

    def test_azure_defaults(self, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "k-env")
        client = build(settings, provider="azure_openai", model="my-deployment", base_url="https://r.openai.azure.com")
        assert isinstance(client, AzureOpenAIChatCompletionClient)
        assert client._client._api_version == "2024-10-21"
        assert str(client._client.base_url).endswith("/openai/deployments/my-deployment/")
        assert client.model_info["family"] == "unknown"

    def test_anthropic(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k-anthropic")
        settings = Settings(model_max_retries=4, model_timeout_s=12.5)
        client = build(settings, provider="anthropic", model="claude-3-5-sonnet-20241022", temperature=0.5)
        assert isinstance(client, AnthropicChatCompletionClient)
        inner = client._client
        assert isinstance(inner, AsyncAnthropic)
        assert (inner.api_key, inner.timeout, inner.max_retries) == ("k-anthropic", 12.5, 4)
        assert client._create_args == {"model": "claude-3-5-sonnet-20241022", "temperature": 0.5}
        assert client.model_info["family"] == "claude-3-5-sonnet"

    def test_anthropic_unknown_model_and_base_url(self, settings: Settings) -> None:
        client = build(settings, provider="anthropic", model="acme-chat", api_key="k", base_url="http://127.0.0.1:1")
        assert isinstance(client, AnthropicChatCompletionClient)
        assert str(client._client.base_url) == "http://127.0.0.1:1"
        assert client.model_info["family"] == "unknown"

    def test_ollama(self) -> None:
        settings = Settings(model_timeout_s=12.5)
        client = build(
            settings, provider="ollama", model="llama3.2", base_url="http://127.0.0.1:9999/v1/",
            temperature=0.5, max_tokens=7,
        )
        assert isinstance(client, OllamaChatCompletionClient)
        http = client._client._client
        assert (str(http.base_url), http.timeout.read) == ("http://127.0.0.1:9999", 12.5)
        assert client._create_args == {"model": "llama3.2", "options": {"temperature": 0.5, "num_predict": 7}}

    def test_ollama_unknown_model_uses_capabilities(self, settings: Settings) -> None:
        client = build(settings, provider="ollama", model="my-model:7b", capabilities=["vision"])
        assert isinstance(client, OllamaChatCompletionClient)
        assert str(client._client._client.base_url) == "http://127.0.0.1:11434"
        assert client.model_info == {
            "vision": True,
            "function_calling": False,
            "json_output": False,
            "structured_output": False,
            "family": "unknown",
        }
