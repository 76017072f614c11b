"""Model clients from spec entries, and the default model."""

from __future__ import annotations

import importlib
import sys

from autobots.config import Settings, read_secret_env
from autobots.models._scripted import ScriptedChatCompletionClient
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
SCRIPTED_MODEL = "scripted"


def is_scripted(config: ModelConfig) -> bool:
    return config.provider == "scripted"


def create_model_client(config: ModelConfig, *, persona: Persona, settings: Settings) -> ChatCompletionClient:
    """A ready AutoGen client for `config`, speaking for `persona` (only the scripted provider uses it).

    Raises:
        ModelConfigError: The entry cannot make a client (no key, no endpoint, rejected by the library).
    """
    if is_scripted(config):
        return ScriptedChatCompletionClient(persona, model=config.model)
    try:
        builder = importlib.import_module(_BUILDERS[config.provider]).build_client
        return builder(config, settings=settings)  # type: ignore[no-any-return]
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
    """The model for specs without a `models` section.

    `provider = "auto"` means OpenAI when its key is set, or when `base_url` points at an
    OpenAI-compatible server (which needs no key); otherwise the offline scripted stand-in.
    """
    default = settings.default_model
    provider = default.provider
    if provider == "auto":
        has_key = read_secret_env(default.api_key_env) is not None
        provider = "openai" if has_key or default.base_url else "scripted"
    if provider == "scripted":
        return ModelConfig(provider="scripted", model=SCRIPTED_MODEL)
    if provider not in _BUILDERS:
        raise ModelConfigError(
            f"default_model.provider {provider!r} is not one of auto, scripted, {', '.join(_BUILDERS)}",
            param="default_model.provider",
        )
    return ModelConfig(
        provider=provider,  # type: ignore[arg-type]
        model=default.model,
        base_url=default.base_url,
        api_key_env=default.api_key_env,
    )
