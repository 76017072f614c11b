"""Pytest fixtures shared across rooms, registered by `pytest_plugins` in `tests/conftest.py`.

`fake_openai` is one server per test (fresh state, a few ms to start); `fake_openai_session` is one
server for the whole session, reset before each test that asks for `fake_openai_shared`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.model_script import ModelScript
from tests.support.openai_server import FakeOpenAIServer


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAIServer]:
    """A started FakeOpenAIServer on 127.0.0.1, stopped after the test."""
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(scope="session")
def fake_openai_session() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def fake_openai_shared(fake_openai_session: FakeOpenAIServer) -> FakeOpenAIServer:
    """The session's server with its replies, faults and records cleared."""
    fake_openai_session.reset()
    fake_openai_session.latency_ms = 0
    fake_openai_session.terminate_after = 1
    return fake_openai_session


@pytest.fixture
def model_server() -> Iterator[tuple[FakeOpenAIServer, ModelScript]]:
    """A FakeOpenAIServer answering through a fresh `ModelScript` (per-model delays, replies and answers)."""
    script = ModelScript()
    with FakeOpenAIServer() as server:
        server.responder = script
        yield server, script
