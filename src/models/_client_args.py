"""Client arguments every provider takes the same way: model, sampling settings and model info."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobots.models._model_info import lookup_model_info, model_info_for
from autobots.models.schemas import ModelConfig
from autogen_core.models import ModelInfo


def common_client_args(config: ModelConfig, lookup: Callable[[str], ModelInfo]) -> dict[str, Any]:
    """`model`, `temperature` and `max_tokens` when set, and `model_info` when the library needs it.

    Args:
        config: The spec's model entry.
        lookup: The client library's own model table (its `get_info`).
    """
    args: dict[str, Any] = {"model": config.model}
    if config.temperature is not None:
        args["temperature"] = config.temperature
    if config.max_tokens is not None:
        args["max_tokens"] = config.max_tokens
    info = model_info_for(config, lookup_model_info(lookup, config.model))
    if info is not None:
        args["model_info"] = info
    return args
