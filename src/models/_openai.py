"""OpenAI and any OpenAI-compatible server (vLLM, Ollama's /v1, Groq, ...) through `base_url`."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._credentials import find_api_key, require_api_key
from autobots.models._model_info import lookup_model_info, model_info_for
from autobots.models.schemas import ModelConfig
from autogen_ext.models.openai import OpenAIChatCompletionClient
from autogen_ext.models.openai import _model_info as openai_models

# Local OpenAI-compatible servers ignore the key, but the SDK refuses to start without one.
LOCAL_SERVER_KEY = "not-needed"


def build_client(config: ModelConfig, *, settings: Settings) -> OpenAIChatCompletionClient:
    """An OpenAIChatCompletionClient; the SDK retries 429/5xx/timeouts with backoff and retry-after."""
    if config.base_url:
        api_key = find_api_key(config) or LOCAL_SERVER_KEY
    else:
        api_key = require_api_key(config)
    kwargs: dict[str, Any] = {
        "model": config.model,
        "api_key": api_key,
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    info = model_info_for(config, lookup_model_info(openai_models.get_info, config.model))
    if info is not None:
        kwargs["model_info"] = info
    return OpenAIChatCompletionClient(**kwargs)
