"""Anthropic's Messages API."""

from __future__ import annotations

from typing import Any

from anthropic import DefaultAsyncHttpxClient
from autobots.config import Settings
from autobots.models._client_args import common_client_args
from autobots.models._credentials import guarded_client_args, require_api_key
from autobots.models.access import ModelAccess
from autobots.models.schemas import ModelConfig
from autogen_ext.models.anthropic import AnthropicChatCompletionClient
from autogen_ext.models.anthropic import _model_info as anthropic_models


def build_client(config: ModelConfig, *, settings: Settings, access: ModelAccess) -> AnthropicChatCompletionClient:
    """An AnthropicChatCompletionClient; without `max_tokens` the client's default (4096) applies."""
    kwargs: dict[str, Any] = {
        **common_client_args(config, anthropic_models.get_info),
        "api_key": require_api_key(config, access),
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    guarded = guarded_client_args(config, access)
    if guarded:
        kwargs["http_client"] = DefaultAsyncHttpxClient(**guarded)
    return AnthropicChatCompletionClient(**kwargs)
