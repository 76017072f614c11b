"""Settings: the defaults of `Settings`, changed by an optional `config.json` (or the file named by
AUTOBOTS_CONFIG), both overridden by AUTOBOTS_* variables.

The defaults live here only: a configuration file holds just what differs (`config.example.json` shows the
usual keys), and README.md's configuration table documents every field (tests/test_config.py checks it).

This is the only module that reads the process environment for our own settings; model API keys
named by a spec's `api_key_env` are read by `autobots.models` through `read_secret_env`.
"""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

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


class ModelEndpoint(BaseModel):
    """A model the operator vouches for (`model_endpoints`): the only entries, with the default model and the
    providers' official endpoints, that are ever given a key read from this server's environment. The fields
    are those of a spec's model entry (API.md) less the inline key; `autobots.models` checks them at startup."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    price: dict[str, float] | None = None
    capabilities: list[str] | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    api_version: str | None = None
    azure_deployment: str | None = None


class Settings(BaseSettings):
    """The server's settings; every field is a row of README.md's configuration table.

    Sources, strongest first: keyword arguments, AUTOBOTS_<FIELD> variables (`__` for nested keys), the JSON
    configuration file when there is one, then the defaults below.
    """

    model_config = SettingsConfigDict(env_prefix="AUTOBOTS_", env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8081
    database_url: str = "sqlite:///./data/autobots.sqlite"
    auth_mode: AuthMode = "local"
    # The model of specs without `models`: a model entry, or the name of one of `model_endpoints`.
    default_model: DefaultModel | str = Field(default_factory=DefaultModel)
    # Who may reach what in `apikey` mode (API.md "Who may reach what"); `local` mode trusts its caller.
    model_endpoints: dict[str, ModelEndpoint] = Field(default_factory=dict)
    allowed_key_envs: list[str] = Field(default_factory=list)
    allowed_base_urls: list[str] = Field(default_factory=list)

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
    # Size of the sandbox's /tmp and of its /dev/shm (each; capped at sandbox_memory_mb). Docker counts them
    # against the container's memory limit; bubblewrap cannot, so there they come on top of it.
    sandbox_tmpfs_mb: int = Field(default=64, gt=0)
    # Disk a run's workspace may use; an execution that goes past it fails (exit 122) and what it wrote is removed.
    sandbox_workspace_quota_mb: int = Field(default=256, gt=0)
    # Finished runs' workspaces (and their files) are removed this long after the run last used them; 0 keeps them.
    sandbox_workspace_retention_hours: float = Field(default=24, ge=0)

    run_max_seconds: int = 600
    run_max_messages: int = 50
    run_max_tokens: int | None = None
    max_concurrent_runs: int = 64
    # A running team's state is saved after its first message, then at most this often (0: after every message);
    # a run resumed after a crash continues from its last save and produces again what came after it.
    checkpoint_interval_s: float = Field(default=0.25, ge=0)
    # Processes that execute runs, so that runs' CPU never delays the API; 0 runs them on the API's event loop
    # (with run_dispatch `procrastinate`, 0 means this server executes none: `python -m autobots worker` does).
    run_workers: int | Literal["auto"] = "auto"
    # How runs reach what executes them: `embedded`, this server's own workers; `procrastinate`, a job queue in
    # the PostgreSQL database that any number of `python -m autobots worker` processes on any host take runs
    # from (live events and cancels cross hosts by PostgreSQL LISTEN/NOTIFY). README "Scaling out".
    run_dispatch: Literal["embedded", "procrastinate"] = "embedded"
    # How often an executor marks its live runs alive, and after how long without a mark another process takes
    # them for dead and requeues them (they resume from their checkpoint). None: 10 s and 60 s embedded,
    # 2 s and 8 s with run_dispatch `procrastinate` (a dead worker's runs resume elsewhere within 15 s).
    run_heartbeat_s: float | None = Field(default=None, gt=0)
    run_stale_after_s: float | None = Field(default=None, gt=0)
    # Write requests (POST, PUT, PATCH, DELETE) processed at once; more wait their turn, reads never do. 0: no limit.
    max_concurrent_writes: int = Field(default=8, ge=0)
    # Per-user quotas (0: unlimited). Active runs (queued or running) are counted in the database, so the
    # limit holds across API processes; streams and the request rate are counted per API process.
    max_active_runs_per_user: int = Field(default=16, ge=0)
    max_streams_per_user: int = Field(default=32, ge=0)
    # Requests per second per API key (in local mode, per X-User-Id user), a token bucket of `rate_limit_burst`.
    rate_limit_per_key: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    max_body_bytes: int = 4 * 1024 * 1024
    # A run's workspace file larger than this is refused (422 file_too_large), never sent cut short.
    max_download_bytes: int = Field(default=256 * 1024 * 1024, ge=0)
    # The environment variable holding the operator key: in `apikey` mode, /metrics and /readyz's details
    # answer only `Authorization: Bearer <operator key>`. Unset (or the variable empty): nobody sees them.
    operator_key_env: str | None = None
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

    @model_validator(mode="after")
    def _dispatch_needs_postgresql(self) -> Settings:
        if self.run_dispatch == "procrastinate" and not self.database_url.startswith("postgresql"):
            raise ValueError("run_dispatch 'procrastinate' keeps its job queue in the database: database_url must be "
                             "a postgresql:// URL")
        return self

    @property
    def heartbeat_s(self) -> float:
        """`run_heartbeat_s`, or its default for the dispatch."""
        return self.run_heartbeat_s or (2.0 if self.run_dispatch == "procrastinate" else 10.0)

    @property
    def stale_after_s(self) -> float:
        """`run_stale_after_s`, or its default for the dispatch (at least two heartbeats)."""
        return self.run_stale_after_s or (8.0 if self.run_dispatch == "procrastinate" else 60.0)

    @model_validator(mode="after")
    def _default_model_is_registered(self) -> Settings:
        if isinstance(self.default_model, str) and self.default_model not in self.model_endpoints:
            raise ValueError(f"default_model {self.default_model!r} is not one of model_endpoints "
                             f"({', '.join(sorted(self.model_endpoints)) or 'none defined'})")
        return self

    @property
    def listens_on_loopback(self) -> bool:
        """`localhost` or a literal loopback address; a name such as `127.example.com` is not one."""
        if self.host.lower() == "localhost":
            return True
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address.is_loopback

    def describe(self) -> dict[str, Any]:
        """What startup logs: every choice, no secrets (the database URL's password is masked as `redacted_url`
        masks it; settings hold no other secret: keys are named by variables, never held)."""
        described = self.model_dump()
        try:
            described["database_url"] = make_url(self.database_url).render_as_string(hide_password=True)
        except ArgumentError:  # not a URL: starting fails with its own error; nothing of it is logged here
            described["database_url"] = "(not a database URL)"
        return described

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
    """Reads `config.json` from the working directory, or the file named by AUTOBOTS_CONFIG; none is fine."""

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

