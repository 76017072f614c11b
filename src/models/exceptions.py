"""Errors of the models room."""

from __future__ import annotations

from autobots.errors import AutobotsError


class ModelConfigError(AutobotsError):
    """A model entry that cannot become a client: unknown provider, missing endpoint or API key.

    Messages name the environment variable to set, never a key's value.
    """

    status = 422
    type = "invalid_request_error"
    code = "invalid_model_config"
