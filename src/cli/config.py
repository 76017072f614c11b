"""Where the command line's client commands find the server: `AUTOBOTS_URL` and `AUTOBOTS_API_KEY`."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    """The client side's own settings (the server's are `autobots.config.Settings`)."""

    model_config = SettingsConfigDict(env_prefix="AUTOBOTS_", extra="ignore")

    url: str | None = None
    api_key: str | None = None
