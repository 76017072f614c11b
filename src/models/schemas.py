"""Model configuration as it appears in a workflow spec's `models` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

Provider = Literal["openai", "azure_openai", "anthropic", "ollama", "scripted"]
Capability = Literal["function_calling", "vision", "json_output", "structured_output"]


class Price(BaseModel):
    """USD per 1000 tokens."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_1k: float = Field(0.0, ge=0)
    completion_per_1k: float = Field(0.0, ge=0)


class ModelConfig(BaseModel):
    """One named model entry. Secrets: `api_key` is accepted inline but never persisted or returned."""

    model_config = ConfigDict(extra="forbid")

    provider: Provider
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(None, max_length=2000)
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    api_key: SecretStr | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    price: Price | None = None
    capabilities: list[Capability] | None = None
    api_version: str | None = Field(None, max_length=50, description="azure_openai only")
    azure_deployment: str | None = Field(None, max_length=200, description="azure_openai only")


class Persona(BaseModel):
    """Who is asking the model: lets the scripted provider act its part."""

    name: str
    system_message: str | None = None
    description: str | None = None
    termination_text: str = "TERMINATE"
