"""Who may reach what: the operator's registered models, and what a spec's own model entries may name.

In `local` mode the caller is the operator and every entry is trusted. In `apikey` mode (a shared server):
- only the operator's entries (`model_endpoints`, `default_model`) and a provider's official endpoint (no
  `base_url`) are given a key from the server's environment, and a spec's `api_key_env` must be one of
  `allowed_key_envs`;
- a spec's own `base_url` brings its own inline key (or none) and must reach a public address, or start with one
  of `allowed_base_urls`; validation refuses the rest and the model client's connections check again
  (`_addresses.GuardedNetworkBackend`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import ip_address

from autobots.config import DefaultModel, Settings, read_secret_env
from autobots.models._addresses import (
    IPAddress,
    RefusedAddress,
    Resolver,
    check_host,
    refusal,
    split_url,
    system_resolver,
)
from autobots.models.exceptions import ModelConfigError
from autobots.models.redaction import carries_secret, redact_url
from autobots.models.schemas import ModelConfig
from pydantic import ValidationError

DEFAULT_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
# Ollama's client talks to this host when the entry names none: the server's own loopback.
OLLAMA_DEFAULT_HOST = "http://127.0.0.1:11434"
# The reference a spec (or the seed translation) uses for the server's default model.
DEFAULT_ENDPOINT = "default"
SCRIPTED_MODEL = "scripted"

SpecError = dict[str, str]


@dataclass(frozen=True)
class ModelAccess:
    """The server's model rules, from its settings.

    Args:
        restricted: True in `apikey` mode, where specs come from users who are not the operator.
        endpoints: The operator's entries by name (marked as the operator's).
        default: The model for specs without `models` (an operator entry).
        allowed_key_envs: The variables a spec's `api_key_env` may name in restricted mode.
        allowed_base_urls: URL prefixes a spec's own `base_url` may start with, whatever their address.
        inline_credentials: Whether a spec may carry its own credentials (an inline `api_key`, a key in a
            `base_url`). They are held in the memory of the server that received them, never stored: with
            `run_dispatch = "procrastinate"` the workers of other hosts could never use them, so they are refused.
    """

    restricted: bool
    endpoints: Mapping[str, ModelConfig]
    default: ModelConfig
    allowed_key_envs: frozenset[str]
    allowed_base_urls: tuple[str, ...]
    inline_credentials: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelAccess:
        """Raises:
            ModelConfigError: An entry of `model_endpoints` is not a valid model entry.
        """
        endpoints = {name: _operator_entry(name, entry.model_dump(exclude_none=True))
                     for name, entry in settings.model_endpoints.items()}
        return cls(
            restricted=settings.auth_mode == "apikey",
            endpoints=endpoints,
            default=_default_model(settings.default_model, endpoints),
            allowed_key_envs=frozenset(settings.allowed_key_envs),
            allowed_base_urls=tuple(settings.allowed_base_urls),
            inline_credentials=settings.run_dispatch == "embedded",
        )

    # -- validation -----------------------------------------------------------------------------------------

    def entry_errors(self, name: str, config: ModelConfig) -> Iterable[SpecError]:
        """What is wrong with the spec entry `models.<name>` on this server (no network access)."""
        path = f"models.{name}"
        if not self.inline_credentials:
            for field, present in (("api_key", config.api_key is not None),
                                   ("base_url", config.base_url is not None and carries_secret(config.base_url))):
                if present:
                    yield {"path": f"{path}.{field}",
                           "message": "this server's runs execute on workers of other hosts, which never receive "
                                      "credentials written into a spec (they are kept in one server's memory only): "
                                      "use an operator endpoint (model_endpoints) or api_key_env"}
        if config.endpoint is not None:
            if self.endpoint(config.endpoint) is None:
                offered = ", ".join(sorted({*self.endpoints, DEFAULT_ENDPOINT})) or "none"
                yield {"path": f"{path}.endpoint",
                       "message": f"unknown endpoint '{config.endpoint}'; this server offers: {offered}"}
            return
        if not self.restricted:
            return
        if config.base_url is not None and config.api_key_env is not None:
            yield {"path": f"{path}.api_key_env",
                   "message": "a model with its own base_url brings its own inline api_key (or none); "
                              "keys from the server's environment go only to the operator's model_endpoints"}
        elif config.api_key_env is not None and not self._key_env_allowed(config):
            allowed = ", ".join(sorted(self.allowed_key_envs)) or "none"
            yield {"path": f"{path}.api_key_env",
                   "message": f"'{config.api_key_env}' is not a variable this server lets specs name "
                              f"(allowed_key_envs: {allowed}); use an operator endpoint or an inline api_key"}
        url = self._user_url(config)
        if url is None or self.base_url_allowed(url):
            return
        try:
            _, host, _, _ = split_url(url)
        except ValueError as err:
            yield {"path": f"{path}.base_url", "message": str(err)}
            return
        literal = _literal_address(host)
        reason = refusal(literal) if literal is not None else None
        if reason is not None:
            yield {"path": f"{path}.base_url", "message": _refused(url, f"{host} is {reason}")}

    async def address_errors(self, models: Mapping[str, ModelConfig] | None,
                             resolver: Resolver = system_resolver) -> list[SpecError]:
        """The spec's own base URLs whose host resolves to an address users may not reach (restricted mode)."""
        errors: list[SpecError] = []
        if not self.restricted:
            return errors
        for name, config in (models or {}).items():
            url = self._user_url(config)
            if url is None or self.base_url_allowed(url):
                continue
            try:
                _, host, port, _ = split_url(url)
            except ValueError:
                continue  # reported by entry_errors
            if _literal_address(host) is not None:
                continue  # checked without resolving
            try:
                await check_host(host, port, resolver)
            except RefusedAddress as err:
                if "could not be resolved" in str(err):
                    continue  # no answer now; the connection checks again when it is made
                errors.append({"path": f"models.{name}.base_url", "message": _refused(url, str(err))})
        return errors

    def base_url_allowed(self, url: str) -> bool:
        """True when `url` starts with one of `allowed_base_urls`, compared by scheme, host, port and path."""
        try:
            scheme, host, port, path = split_url(url)
        except ValueError:
            return False
        for prefix in self.allowed_base_urls:
            try:
                p_scheme, p_host, p_port, p_path = split_url(prefix)
            except ValueError:
                continue
            if (scheme, host, port) == (p_scheme, p_host, p_port) and _path_within(path, p_path):
                return True
        return False

    # -- running ------------------------------------------------------------------------------------------

    def endpoint(self, name: str) -> ModelConfig | None:
        """The operator's entry that `{"endpoint": name}` names."""
        if name in self.endpoints:
            return self.endpoints[name]
        return self.default if name == DEFAULT_ENDPOINT else None

    def resolve(self, config: ModelConfig) -> ModelConfig:
        """`config` as a run uses it: an endpoint reference becomes the operator's entry (with the reference's
        temperature, if any).

        Raises:
            ModelConfigError: The reference names no endpoint (the operator removed it since validation).
        """
        if config.endpoint is None:
            return config
        target = self.endpoint(config.endpoint)
        if target is None:
            raise ModelConfigError(f"model endpoint '{config.endpoint}' is not offered by this server any more",
                                   param="endpoint")
        if config.temperature is not None:
            target = target.model_copy(update={"temperature": config.temperature})
        return target

    def api_key(self, config: ModelConfig) -> str | None:
        """The key to send for `config`: its inline key, else the environment's when the entry may have it."""
        if config.api_key is not None and config.api_key.get_secret_value():
            return config.api_key.get_secret_value()
        if not self.may_read_env(config):
            return None
        return read_secret_env(key_env_name(config))

    def may_read_env(self, config: ModelConfig) -> bool:
        """Whether `config` may be given a key from the server's environment."""
        if not self.restricted or config.from_operator:
            return True
        return config.base_url is None and self._key_env_allowed(config)

    def needs_guard(self, config: ModelConfig) -> bool:
        """Whether `config`'s connections must be checked against private addresses."""
        if not self.restricted or config.from_operator:
            return False
        url = self._user_url(config)
        return url is not None and not self.base_url_allowed(url)

    def _key_env_allowed(self, config: ModelConfig) -> bool:
        name = config.api_key_env
        return name is None or name in self.allowed_key_envs or name == DEFAULT_KEY_ENV.get(config.provider or "")

    @staticmethod
    def _user_url(config: ModelConfig) -> str | None:
        """The address a spec entry makes the server call, when it is not a provider's official endpoint."""
        if config.base_url is not None:
            return config.base_url
        return OLLAMA_DEFAULT_HOST if config.provider == "ollama" else None


def key_env_name(config: ModelConfig) -> str:
    """The environment variable that holds this entry's key."""
    return config.api_key_env or DEFAULT_KEY_ENV.get(config.provider or "", "OPENAI_API_KEY")


def _operator_entry(name: str, fields: dict[str, object]) -> ModelConfig:
    try:
        return ModelConfig.model_validate(fields).as_operator_entry()
    except ValidationError as err:
        problem = err.errors(include_url=False)[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise ModelConfigError(f"model_endpoints.{name}{'.' + where if where else ''}: {problem['msg']}",
                               param=f"model_endpoints.{name}") from err


def _default_model(default: DefaultModel | str, endpoints: Mapping[str, ModelConfig]) -> ModelConfig:
    """The model for specs without `models`; `provider = "auto"` means OpenAI when its key is set, or when
    `base_url` points at an OpenAI-compatible server (which needs no key); otherwise the offline stand-in."""
    if isinstance(default, str):
        return endpoints[default]  # Settings checks that the name is registered
    provider = default.provider
    if provider == "auto":
        has_key = read_secret_env(default.api_key_env) is not None
        provider = "openai" if has_key or default.base_url else "scripted"
    if provider == "scripted":
        return ModelConfig(provider="scripted", model=SCRIPTED_MODEL).as_operator_entry()
    if provider not in ("openai", "azure_openai", "anthropic", "ollama"):
        raise ModelConfigError(
            f"default_model.provider {provider!r} is not one of auto, scripted, openai, azure_openai, anthropic, "
            "ollama", param="default_model.provider")
    return ModelConfig(provider=provider, model=default.model, base_url=default.base_url,  # type: ignore[arg-type]
                       api_key_env=default.api_key_env).as_operator_entry()


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


def _path_within(path: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return path.startswith(prefix) or path == prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


def _refused(url: str, reason: str) -> str:
    return (f"{_shown(url)} may not be used: {reason}. Use an operator endpoint, a public address, or ask the "
            "operator to add it to allowed_base_urls")


def _shown(url: str) -> str:
    """The URL without user info or query (they may carry credentials)."""
    return redact_url(url)
