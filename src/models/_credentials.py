"""API keys and connections as the server's rules allow them (`access.ModelAccess`)."""

from __future__ import annotations

from typing import Any

from autobots.models.access import ModelAccess, key_env_name
from autobots.models.exceptions import ModelConfigError
from autobots.models.schemas import ModelConfig


def require_api_key(config: ModelConfig, access: ModelAccess) -> str:
    """The key for `config`.

    Raises:
        ModelConfigError: No key; the message names the variable to set (never a value).
    """
    key = access.api_key(config)
    if key is not None:
        return key
    if not access.may_read_env(config):
        raise ModelConfigError(
            f"No API key for {config.provider} model {config.model!r}: give the model an inline api_key, or use "
            "one of the server's model endpoints.", param="api_key")
    raise ModelConfigError(
        f"No API key for {config.provider} model {config.model!r}: "
        f"set the environment variable {key_env_name(config)} or give the model an api_key.",
        param="api_key_env",
    )


def guarded_client_args(config: ModelConfig, access: ModelAccess, *, httpx2: bool = True) -> dict[str, Any]:
    """Arguments for an HTTP client whose connections reach only public addresses and follow no redirect, when
    `config` is a user's own endpoint on a shared server; otherwise none (the library's or our pooled client)."""
    if not access.needs_guard(config):
        return {}
    from autobots.models._addresses import guarded_transport_httpx, guarded_transport_httpx2

    transport = guarded_transport_httpx2() if httpx2 else guarded_transport_httpx()
    return {"transport": transport, "follow_redirects": False}
