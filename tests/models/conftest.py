"""Fixtures for the models room (`fake_openai` comes from tests/conftest.py via tests/support/fixtures.py)."""

from __future__ import annotations

import pytest
from autobots.config import Settings


@pytest.fixture
def settings() -> Settings:
    """Overrides the root fixture: no database here; fast retries and a short timeout for failure paths."""
    return Settings(model_max_retries=2, model_timeout_s=5.0)


@pytest.fixture(autouse=True)
def _no_model_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in the developer's environment must not change what the tests see."""
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TEST_MODEL_KEY"):
        monkeypatch.delenv(name, raising=False)
