"""Anthropic's Messages API."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._client_args import common_client_args
from autobots.models._credentials import require_api_key
from autobots.models.schemas import ModelConfig
from autogen_ext.models.anthropic import AnthropicChatCompletionClient
from autogen_ext.models.anthropic import _model_info as anthropic_models


def build_client(config: ModelConfig, *, settings: Settings) -> AnthropicChatCompletionClient:
    """An AnthropicChatCompletionClient; without `max_tokens` the client's default (4096) applies."""
    kwargs: dict[str, Any] = {
        **common_client_args(config, anthropic_models.get_info),
        "api_key": require_api_key(config),
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    return AnthropicChatCompletionClient(**kwargs)
