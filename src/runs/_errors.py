"""Name the cause of a failed run for `error.type`, without leaking internals or secrets."""

from __future__ import annotations

import asyncio

import httpx
from autobots.errors import AutobotsError


def classify(exc: BaseException) -> tuple[str, str]:
    """(error.type, error.message) for an exception that ended a run."""
    if isinstance(exc, AutobotsError):
        return exc.code or exc.type, exc.message
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a hard dependency
        openai = None  # type: ignore[assignment]
    if openai is not None:
        if isinstance(exc, openai.APITimeoutError):
            return "model_timeout", "the model endpoint did not answer in time"
        if isinstance(exc, openai.APIConnectionError):
            return "model_connection_error", "could not connect to the model endpoint"
        if isinstance(exc, openai.RateLimitError):
            return "model_rate_limited", "the model endpoint kept rate-limiting the requests (429)"
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return "model_auth_error", "the model endpoint refused the API key"
        if isinstance(exc, openai.APIStatusError):
            kind = "model_server_error" if exc.status_code >= 500 else "model_request_error"
            return kind, f"the model endpoint answered HTTP {exc.status_code}"
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError):
        return "model_timeout", "a model or tool call timed out"
    if isinstance(exc, httpx.HTTPError | ConnectionError):
        return "model_connection_error", "could not reach the model endpoint"
    module = type(exc).__module__
    if module.startswith(("anthropic", "ollama")):
        return "model_error", f"the model endpoint failed ({type(exc).__name__})"
    return "internal_error", f"the run failed unexpectedly ({type(exc).__name__})"
