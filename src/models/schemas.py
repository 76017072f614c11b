"""Model configuration as it appears in a workflow spec's `models` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

Provider = Literal["openai", "azure_openai", "anthropic", "ollama", "scripted"]
Capability = Literal["function_calling", "vision", "json_output", "structured_output"]


class Price(BaseModel):
    """USD per 1000 tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_1k: float = Field(0.0, ge=0)
    completion_per_1k: float = Field(0.0, ge=0)


class ModelConfig(BaseModel):
    """One named model entry. Secrets: `api_key` is accepted inline but never persisted or returned.

    An entry is either the model itself (`provider`, `model`, ...) or a reference to a model the operator
    registered (`endpoint`, optionally with its own `temperature`); runs see references resolved
    (`autobots.models.access`).
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: str | None = Field(None, min_length=1, max_length=100, description="A name of the server's "
                                 "model_endpoints; only `temperature` may be given beside it")
    provider: Provider | None = None
    model: str | None = Field(None, min_length=1, max_length=200)
    base_url: str | None = Field(None, max_length=2000)
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    api_key: SecretStr | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    price: Price | None = None
    capabilities: list[Capability] | None = None
    api_version: str | None = Field(None, max_length=50, description="azure_openai only")
    azure_deployment: str | None = Field(None, max_length=200, description="azure_openai only")
    # Set only when the entry came from the operator (model_endpoints, default_model), never from a spec.
    _operator: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _model_or_endpoint(self) -> ModelConfig:
        if self.endpoint is not None:
            extra = sorted(name for name in self.model_fields_set - {"endpoint", "temperature"}
                           if getattr(self, name) is not None)
            if extra:
                raise ValueError(f"an endpoint reference takes only temperature besides it; remove {', '.join(extra)}")
            return self
        missing = [name for name in ("provider", "model") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required (or name an operator model with \"endpoint\")")
        return self

    @property
    def from_operator(self) -> bool:
        """True for the operator's own entries, which may use any address and any key of the environment."""
        return self._operator

    def as_operator_entry(self) -> ModelConfig:
        """This entry marked as the operator's (call only on entries read from the server's settings)."""
        copy = self.model_copy()
        copy._operator = True
        return copy


class Persona(BaseModel):
    """Who is asking the model: lets the scripted provider act its part."""

    name: str
    system_message: str | None = None
    description: str | None = None
    termination_text: str = "TERMINATE"
