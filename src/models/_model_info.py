"""ModelInfo for model names the client libraries do not know, built from the entry's `capabilities`."""

from __future__ import annotations

from collections.abc import Callable

from autobots.models.schemas import ModelConfig
from autogen_core.models import ModelFamily, ModelInfo


def lookup_model_info(lookup: Callable[[str], ModelInfo], model: str) -> ModelInfo | None:
    """The library's own info for `model`, or None when it does not know the name."""
    try:
        return lookup(model)
    except (KeyError, ValueError):  # openai's table raises ValueError, the others KeyError
        return None


def model_info_for(config: ModelConfig, known: ModelInfo | None) -> ModelInfo | None:
    """The ModelInfo to pass to the client, or None to let the library use its own table.

    Declared `capabilities` always win; an unknown name without them is text-only, so any
    OpenAI-compatible server works.
    """
    if config.capabilities is None and known is not None:
        return None
    caps = set(config.capabilities or ())
    return ModelInfo(
        vision="vision" in caps,
        function_calling="function_calling" in caps,
        json_output="json_output" in caps,
        structured_output="structured_output" in caps,
        family=known["family"] if known is not None else ModelFamily.UNKNOWN,
    )
