"""API keys: the inline `api_key`, else the environment variable the entry names, else the provider's."""

from __future__ import annotations

from autobots.config import read_secret_env
from autobots.models.exceptions import ModelConfigError
from autobots.models.schemas import ModelConfig

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}


def key_env_name(config: ModelConfig) -> str:
    """The environment variable that holds this entry's key."""
    return config.api_key_env or DEFAULT_KEY_ENV.get(config.provider, "OPENAI_API_KEY")


def find_api_key(config: ModelConfig) -> str | None:
    """The key for `config`, or None when neither the entry nor the environment has one."""
    if config.api_key is not None and config.api_key.get_secret_value():
        return config.api_key.get_secret_value()
    return read_secret_env(key_env_name(config))


def require_api_key(config: ModelConfig) -> str:
    """The key for `config`.

    Raises:
        ModelConfigError: No key; the message names the variable to set (never a value).
    """
    key = find_api_key(config)
    if key is None:
        env = key_env_name(config)
        raise ModelConfigError(
            f"No API key for {config.provider} model {config.model!r}: "
            f"set the environment variable {env} or give the model an api_key.",
            param="api_key_env",
        )
    return key
