"""Settings: `config.json` (or the file named by AUTOBOTS_CONFIG), overridden by AUTOBOTS_* variables.

This is the only module that reads the process environment for our own settings; model API keys
named by a spec's `api_key_env` are read by `autobots.models` through `read_secret_env`.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

SandboxChoice = Literal["auto", "docker", "process", "local", "none"]
AuthMode = Literal["local", "apikey"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class DefaultModel(BaseModel):
    """The model used by specs that declare no `models` section.

    `provider = "auto"` means OpenAI when an OpenAI key is configured, else the offline scripted stand-in.
    """

    provider: str = "auto"
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOBOTS_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8081
    database_url: str = "sqlite:///./data/autobots.sqlite"
    auth_mode: AuthMode = "local"
    default_model: DefaultModel = Field(default_factory=DefaultModel)

    sandbox: SandboxChoice = "auto"
    sandbox_image: str = "autobots-sandbox:0.1.0"
    sandbox_memory_mb: int = 512
    sandbox_cpus: float = 1.0
    sandbox_pids_limit: int = 128
    sandbox_pool_size: int = 2
    sandbox_allow_network: bool = False
    sandbox_output_limit_bytes: int = 65536
    sandbox_default_timeout_s: int = 60
    sandbox_workspace_root: str = "./data/workspaces"

    run_max_seconds: int = 600
    run_max_messages: int = 50
    run_max_tokens: int | None = None
    max_concurrent_runs: int = 64
    # A running team's state is saved after its first message, then at most this often (0: after every message);
    # a run resumed after a crash continues from its last save and produces again what came after it.
    checkpoint_interval_s: float = Field(default=0.25, ge=0)
    # Processes that execute runs, so that runs' CPU never delays the API; 0 runs them on the API's event loop.
    run_workers: int | Literal["auto"] = "auto"
    # Write requests (POST, PUT, PATCH, DELETE) processed at once; more wait their turn, reads never do. 0: no limit.
    max_concurrent_writes: int = Field(default=8, ge=0)
    max_body_bytes: int = 4 * 1024 * 1024
    model_max_retries: int = 3
    model_timeout_s: float = 120.0
    log_level: str = "INFO"
    access_log: bool = False

    @field_validator("database_url")
    @classmethod
    def _database_url_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("database_url must not be empty")
        return value

    @field_validator("run_workers")
    @classmethod
    def _run_workers_not_negative(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("run_workers must be 0 (in-process), a positive count or \"auto\"")
        return value

    @property
    def listens_on_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS or self.host.startswith("127.")

    def describe(self) -> dict[str, Any]:
        """What startup logs: every choice, no secrets (settings hold none)."""
        return self.model_dump()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _JsonFileSource(settings_cls))


class _JsonFileSource(PydanticBaseSettingsSource):
    """Reads `config.json` from the working directory, or the file named by AUTOBOTS_CONFIG."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("AUTOBOTS_CONFIG", "config.json"))
        if not path.is_file():
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the configuration must be a JSON object")
        return data


def read_secret_env(name: str) -> str | None:
    """The value of an environment variable that holds a secret (a model API key), or None."""
    value = os.environ.get(name)
    return value or None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
