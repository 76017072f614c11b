"""Name the cause of a failed run for `error.type`, without leaking internals or secrets.

AutoGen teams re-raise an agent's exception as `RuntimeError("<ExceptionType>: <message>\\nTraceback...")`,
so causes are recognised by exception type name, both for direct and for wrapped exceptions.
"""

from __future__ import annotations

import re

from autobots.errors import AutobotsError

_STATUS = re.compile(r"Error code: (\d{3})")
_BY_NAME: dict[str, tuple[str, str]] = {
    "APITimeoutError": ("model_timeout", "the model endpoint did not answer in time"),
    "ReadTimeout": ("model_timeout", "the model endpoint did not answer in time"),
    "TimeoutException": ("model_timeout", "the model endpoint did not answer in time"),
    "APIConnectionError": ("model_connection_error", "could not connect to the model endpoint"),
    "ConnectError": ("model_connection_error", "could not connect to the model endpoint"),
    "ConnectionError": ("model_connection_error", "could not connect to the model endpoint"),
    "RateLimitError": ("model_rate_limited", "the model endpoint kept rate-limiting the requests (429)"),
    "AuthenticationError": ("model_auth_error", "the model endpoint refused the API key"),
    "PermissionDeniedError": ("model_auth_error", "the model endpoint refused the API key"),
    "ModelConfigError": ("invalid_model_config", "the workflow's model configuration is unusable"),
    "SandboxUnavailable": ("sandbox_unavailable", "no sandbox could run the code"),
    "SandboxError": ("sandbox_error", "the sandbox failed to start the code"),
}
_STATUS_ERRORS = ("InternalServerError", "APIStatusError", "BadRequestError", "NotFoundError",
                  "UnprocessableEntityError", "ConflictError")


def _by_type_name(name: str, message: str) -> tuple[str, str] | None:
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name in _STATUS_ERRORS:
        match = _STATUS.search(message)
        status = int(match.group(1)) if match else 500
        kind = "model_server_error" if status >= 500 else "model_request_error"
        return kind, f"the model endpoint answered HTTP {status}"
    return None


def classify(exc: BaseException) -> tuple[str, str]:
    """(error.type, error.message) for an exception that ended a run."""
    if isinstance(exc, AutobotsError):
        return exc.code or exc.type, exc.message
    for cls in type(exc).__mro__:
        found = _by_type_name(cls.__name__, str(exc))
        if found:
            return found
    if isinstance(exc, RuntimeError):
        head = str(exc).split("\n", 1)[0]
        name, _, message = head.partition(": ")
        found = _by_type_name(name.strip(), message)
        if found:
            return found
    module = type(exc).__module__
    if module.startswith(("anthropic", "ollama")):
        return "model_error", f"the model endpoint failed ({type(exc).__name__})"
    return "internal_error", f"the run failed unexpectedly ({type(exc).__name__})"
