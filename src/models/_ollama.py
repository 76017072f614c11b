"""Ollama's native API; `base_url` is the host (a trailing `/v1` from OpenAI-style URLs is dropped)."""

from __future__ import annotations

from typing import Any

from autobots.config import Settings
from autobots.models._credentials import guarded_client_args
from autobots.models._model_info import lookup_model_info, model_info_for
from autobots.models.access import OLLAMA_DEFAULT_HOST, ModelAccess
from autobots.models.schemas import ModelConfig
from autogen_ext.models.ollama import OllamaChatCompletionClient
from autogen_ext.models.ollama import _model_info as ollama_models
from ollama import AsyncClient

DEFAULT_HOST = OLLAMA_DEFAULT_HOST


def ollama_host(base_url: str | None) -> str:
    """The Ollama host for `base_url`; people often paste the OpenAI-compatible `.../v1` URL."""
    host = (base_url or DEFAULT_HOST).rstrip("/")
    return host.removesuffix("/v1")


def build_client(config: ModelConfig, *, settings: Settings, access: ModelAccess) -> OllamaChatCompletionClient:
    """An OllamaChatCompletionClient; temperature and max_tokens go to Ollama's `options`.

    The Ollama client has no retry setting, so `model_max_retries` does not apply here.
    """
    host = ollama_host(config.base_url)
    options: dict[str, Any] = {}
    if config.temperature is not None:
        options["temperature"] = config.temperature
    if config.max_tokens is not None:
        options["num_predict"] = config.max_tokens
    kwargs: dict[str, Any] = {"model": config.model, "host": host}
    if options:
        kwargs["options"] = options
    info = model_info_for(config, lookup_model_info(ollama_models.get_info, config.model))
    if info is not None:
        kwargs["model_info"] = info
    client = OllamaChatCompletionClient(**kwargs)
    # autogen-ext passes only `host` to ollama.AsyncClient, so a hung server would block forever;
    # swap in a client with our timeout (the attribute is the one the base class calls).
    client._client = AsyncClient(host=host, timeout=settings.model_timeout_s,
                                 **guarded_client_args(config, access, httpx2=False))
    return client
