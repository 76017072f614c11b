"""Model clients per provider (OpenAI and compatible servers, Azure OpenAI, Anthropic, Ollama, and
the offline `scripted` stand-in), the default model, and pricing."""

from autobots.models._scripted import ScriptedChatCompletionClient
from autobots.models.access import ModelAccess
from autobots.models.exceptions import ModelConfigError
from autobots.models.pricing import compute_cost
from autobots.models.schemas import ModelConfig, Persona, Price
from autobots.models.service import (
    close_shared_clients,
    create_model_client,
    is_scripted,
    preload,
    resolve_default_model,
)

__all__ = [
    "ModelAccess",
    "ModelConfig",
    "ModelConfigError",
    "Persona",
    "Price",
    "ScriptedChatCompletionClient",
    "close_shared_clients",
    "compute_cost",
    "create_model_client",
    "is_scripted",
    "preload",
    "resolve_default_model",
]
