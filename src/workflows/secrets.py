"""Inline model API keys: accepted, held in memory only (this server's processes), never persisted or returned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobots.workflows.schemas import WorkflowSpec


class SecretVault:
    """Inline `api_key`s by workflow id and model name; lost on restart (use `api_key_env` to persist)."""

    def __init__(self) -> None:
        self._keys: dict[str, dict[str, str]] = {}
        self.listeners: list[Callable[[str, dict[str, str] | None], None]] = []

    def keep(self, workflow_id: str, spec: WorkflowSpec) -> None:
        keys = {name: model.api_key.get_secret_value()
                for name, model in (spec.models or {}).items() if model.api_key is not None}
        if keys:
            self.put(workflow_id, keys)
        else:
            self.forget(workflow_id)

    def put(self, workflow_id: str, keys: dict[str, str]) -> None:
        self._keys[workflow_id] = dict(keys)
        for listener in self.listeners:
            listener(workflow_id, dict(keys))

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Every key held, for handing to this server's run workers (never to storage or a client)."""
        return {workflow_id: dict(keys) for workflow_id, keys in self._keys.items()}

    def keys_for(self, workflow_id: str | None) -> dict[str, str]:
        return dict(self._keys.get(workflow_id or "", {}))

    def forget(self, workflow_id: str) -> None:
        if self._keys.pop(workflow_id, None) is not None:
            for listener in self.listeners:
                listener(workflow_id, None)


def redact_spec(spec: WorkflowSpec) -> dict[str, Any]:
    """The spec as it may be stored, returned or published: no inline key anywhere."""
    data = spec.model_dump(mode="json", exclude_none=False)
    for model in (data.get("models") or {}).values():
        model.pop("api_key", None)
    return data


vault = SecretVault()
