"""Anthropic's Messages API."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._credentials import require_api_key
from autobots.models._model_info import lookup_model_info, model_info_for
from autobots.models.schemas import ModelConfig
from autogen_ext.models.anthropic import AnthropicChatCompletionClient
from autogen_ext.models.anthropic import _model_info as anthropic_models


def build_client(config: ModelConfig, *, settings: Settings) -> AnthropicChatCompletionClient:
    """An AnthropicChatCompletionClient; without `max_tokens` the client's default (4096) applies."""
    kwargs: dict[str, Any] = {
        "model": config.model,
        "api_key": require_api_key(config),
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.temperature is not None:
        kwargs["temperature"] = config.temperature
    if config.max_tokens is not None:
        kwargs["max_tokens"] = config.max_tokens
    info = model_info_for(config, lookup_model_info(anthropic_models.get_info, config.model))
    if info is not None:
        kwargs["model_info"] = info
    return AnthropicChatCompletionClient(**kwargs)
