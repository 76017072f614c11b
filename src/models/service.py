"""Model clients from spec entries, and the default model."""

from __future__ import annotations

import importlib
import sys

from autobots.config import Settings
from autobots.models._scripted import ScriptedChatCompletionClient
from autobots.models.access import SCRIPTED_MODEL, ModelAccess
from autobots.models.exceptions import ModelConfigError
from autobots.models.schemas import ModelConfig, Persona
from autogen_core.models import ChatCompletionClient

# Provider modules by name (our own modules, fixed here, never taken from a spec). They are imported on
# first use: the SDKs behind them take seconds to import and most servers use one provider.
_BUILDERS: dict[str, str] = {
    "openai": "autobots.models._openai",
    "azure_openai": "autobots.models._azure",
    "anthropic": "autobots.models._anthropic",
    "ollama": "autobots.models._ollama",
}


def is_scripted(config: ModelConfig) -> bool:
    return config.provider == "scripted"


def create_model_client(config: ModelConfig, *, persona: Persona, settings: Settings) -> ChatCompletionClient:
    """A ready AutoGen client for `config`, speaking for `persona` (only the scripted provider uses it).

    Raises:
        ModelConfigError: The entry cannot make a client (no key, no endpoint, rejected by the library).
    """
    access = ModelAccess.from_settings(settings)
    config = access.resolve(config)
    if is_scripted(config):
        return ScriptedChatCompletionClient(persona, model=config.model or SCRIPTED_MODEL)
    try:
        builder = importlib.import_module(_BUILDERS[config.provider or ""]).build_client
        return builder(config, settings=settings, access=access)  # type: ignore[no-any-return]
    except ValueError as err:  # AutoGen's own checks, e.g. a create argument it refuses
        raise ModelConfigError(f"{config.provider} model {config.model!r}: {err}") from err


def preload(provider: str) -> None:
    """Import a provider's SDK now, so that no run pays for it (run workers call this as they start)."""
    if provider in _BUILDERS:
        module = importlib.import_module(_BUILDERS[provider])
        warm = getattr(module, "warm_up", None)
        if warm is not None:
            warm()


async def close_shared_clients() -> None:
    """Close what model clients built on the running event loop share (their HTTP connection pool); for a
    process that stops running models. Imports no SDK that was not used."""
    http = sys.modules.get("autobots.models._http")
    if http is not None:
        await http.close_shared_http_client()


def resolve_default_model(settings: Settings) -> ModelConfig:
    """The model for specs without a `models` section (an operator entry; see `ModelAccess`)."""
    return ModelAccess.from_settings(settings).default
