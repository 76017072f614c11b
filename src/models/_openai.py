"""OpenAI and any OpenAI-compatible server (vLLM, Ollama's /v1, Groq, ...) through `base_url`."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._client_args import common_client_args
from autobots.models._credentials import guarded_client_args, require_api_key
from autobots.models._http import new_http_client, shared_tls_context
from autobots.models.access import ModelAccess
from autobots.models.schemas import ModelConfig
from autogen_ext.models.openai import OpenAIChatCompletionClient
from autogen_ext.models.openai import _model_info as openai_models
from openai import DefaultAsyncHttpxClient

# Local OpenAI-compatible servers ignore the key, but the SDK refuses to start without one.
LOCAL_SERVER_KEY = "not-needed"


def build_client(config: ModelConfig, *, settings: Settings, access: ModelAccess) -> OpenAIChatCompletionClient:
    """An OpenAIChatCompletionClient; the SDK retries 429/5xx/timeouts with backoff and retry-after."""
    if config.base_url:
        api_key = access.api_key(config) or LOCAL_SERVER_KEY
    else:
        api_key = require_api_key(config, access)
    guarded = guarded_client_args(config, access)
    kwargs: dict[str, Any] = {
        **common_client_args(config, openai_models.get_info),
        "api_key": api_key,
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
        "http_client": DefaultAsyncHttpxClient(**guarded) if guarded
        else new_http_client(),
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    return OpenAIChatCompletionClient(**kwargs)


def warm_up() -> None:
    """Build what every client shares (the TLS context) before the first run needs it."""
    shared_tls_context()
