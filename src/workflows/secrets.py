"""Model credentials in a spec (an inline `api_key`, user info or a key in a `base_url`): accepted, held in memory
only (this server's processes), never persisted or returned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobots.models.redaction import carries_secret, redact_url
from autobots.workflows.schemas import WorkflowSpec

# What the vault holds per workflow: model name -> {"api_key"?: ..., "base_url"?: ...} (the unredacted values).
ModelSecrets = dict[str, dict[str, str]]


class SecretVault:
    """Model credentials by workflow id and model name; lost on restart (use an operator endpoint to persist)."""

    def __init__(self) -> None:
        self._secrets: dict[str, ModelSecrets] = {}
        self.listeners: list[Callable[[str, ModelSecrets | None], None]] = []

    def keep(self, workflow_id: str, spec: WorkflowSpec) -> None:
        secrets = secrets_of(spec)
        if secrets:
            self.put(workflow_id, secrets)
        else:
            self.forget(workflow_id)

    def put(self, workflow_id: str, secrets: ModelSecrets) -> None:
        self._secrets[workflow_id] = {name: dict(values) for name, values in secrets.items()}
        for listener in self.listeners:
            listener(workflow_id, self.secrets_for(workflow_id))

    def snapshot(self) -> dict[str, ModelSecrets]:
        """Every credential held, for handing to this server's run workers (never to storage or a client)."""
        return {workflow_id: self.secrets_for(workflow_id) for workflow_id in self._secrets}

    def secrets_for(self, workflow_id: str | None) -> ModelSecrets:
        return {name: dict(values) for name, values in self._secrets.get(workflow_id or "", {}).items()}

    def forget(self, workflow_id: str) -> None:
        if self._secrets.pop(workflow_id, None) is not None:
            for listener in self.listeners:
                listener(workflow_id, None)


def secrets_of(spec: WorkflowSpec) -> ModelSecrets:
    """The credentials that `redact_spec` removes from `spec`, by model name."""
    found: ModelSecrets = {}
    for name, model in (spec.models or {}).items():
        values: dict[str, str] = {}
        if model.api_key is not None:
            values["api_key"] = model.api_key.get_secret_value()
        if model.base_url is not None and carries_secret(model.base_url):
            values["base_url"] = model.base_url
        if values:
            found[name] = values
    return found


def redact_spec(spec: WorkflowSpec) -> dict[str, Any]:
    """The spec as it may be stored, returned or published: no inline key, no credential in a base_url."""
    data = spec.model_dump(mode="json", exclude_none=False, by_alias=True)
    for model in (data.get("models") or {}).values():
        model.pop("api_key", None)
        if model.get("endpoint") is None:
            model.pop("endpoint", None)
        if model.get("base_url"):
            model["base_url"] = redact_url(model["base_url"])
    return data


vault = SecretVault()
