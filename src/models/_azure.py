"""Azure OpenAI: `base_url` is the resource endpoint, `azure_deployment` defaults to the model name."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._client_args import common_client_args
from autobots.models._credentials import guarded_client_args, require_api_key
from autobots.models._http import new_http_client
from autobots.models.access import ModelAccess
from autobots.models.exceptions import ModelConfigError
from autobots.models.schemas import ModelConfig
from autogen_ext.models.openai import AzureOpenAIChatCompletionClient
from autogen_ext.models.openai import _model_info as openai_models
from openai import DefaultAsyncHttpxClient

# A GA version of the Azure OpenAI data-plane API, used when the entry names none.
DEFAULT_API_VERSION = "2024-10-21"


def build_client(config: ModelConfig, *, settings: Settings, access: ModelAccess) -> AzureOpenAIChatCompletionClient:
    """An AzureOpenAIChatCompletionClient for the entry's endpoint and deployment."""
    if not config.base_url:
        raise ModelConfigError(
            f"azure_openai model {config.model!r} needs base_url: the resource endpoint, "
            "e.g. https://NAME.openai.azure.com",
            param="base_url",
        )
    kwargs: dict[str, Any] = {
        **common_client_args(config, openai_models.get_info),
        "azure_endpoint": config.base_url,
        "azure_deployment": config.azure_deployment or config.model,
        "api_version": config.api_version or DEFAULT_API_VERSION,
        "api_key": require_api_key(config, access),
        "timeout": settings.model_timeout_s,
        "max_retries": settings.model_max_retries,
        "http_client": new_http_client(),
    }
    guarded = guarded_client_args(config, access)
    if guarded:
        kwargs["http_client"] = DefaultAsyncHttpxClient(**guarded)
    return AzureOpenAIChatCompletionClient(**kwargs)
