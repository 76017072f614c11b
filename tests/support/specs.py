"""Workflow spec factories: plain dicts as a client would POST them, with keyword overrides.

The scripted ones need no model server; `openai_spec` and `two_assistants_spec` talk to an OpenAI-compatible
server at `base_url` (the fake one in `tests/support/openai_server.py`, in tests and benchmarks alike).
"""

from __future__ import annotations

from typing import Any


def autonomous_spec(**overrides: Any) -> dict[str, Any]:
    """A coder + executing user proxy on the scripted model."""
    spec: dict[str, Any] = {
        "name": "coder",
        "type": "autonomous",
        "models": {"default": {"provider": "scripted", "model": "scripted",
                               "price": {"prompt_per_1k": 0.001, "completion_per_1k": 0.002}}},
        "agents": [
            {"name": "coder", "kind": "assistant", "system_message": "You are a python coder."},
            {"name": "user_proxy", "kind": "userproxy", "code_execution": {"timeout_s": 10}},
        ],
        "sender": "user_proxy",
        "receiver": "coder",
    }
    spec.update(overrides)
    return spec


def sequential_spec(**overrides: Any) -> dict[str, Any]:
    """A researcher then a writer on the scripted model."""
    spec: dict[str, Any] = {
        "name": "research-then-write",
        "type": "sequential",
        "models": {"default": {"provider": "scripted", "model": "scripted"}},
        "agents": [
            {"name": "researcher", "system_message": "You are a researcher."},
            {"name": "writer", "system_message": "You are a writer."},
        ],
        "steps": ["researcher", "writer"],
        "summary_method": "last",
    }
    spec.update(overrides)
    return spec


def groupchat_spec(**overrides: Any) -> dict[str, Any]:
    """A planner, coder, executor and critic in a group chat on the scripted model."""
    spec: dict[str, Any] = {
        "name": "team",
        "type": "groupchat",
        "models": {"default": {"provider": "scripted", "model": "scripted"}},
        "agents": [
            {"name": "planner", "system_message": "You plan.", "description": "Plans the work."},
            {"name": "coder", "system_message": "You write python code.", "description": "Writes python code."},
            {"name": "executor", "kind": "userproxy", "code_execution": {},
             "description": "Runs code and reports the output."},
            {"name": "critic", "system_message": "You review the work.", "description": "Reviews the result."},
        ],
        "groupchat": {"agents": ["planner", "coder", "executor", "critic"], "speaker_selection": "auto"},
    }
    spec.update(overrides)
    return spec


def openai_spec(base_url: str, **overrides: Any) -> dict[str, Any]:
    """`autonomous_spec` with an assistant on the OpenAI-compatible server at `base_url`."""
    spec = autonomous_spec(
        models={"default": {"provider": "openai", "model": "local-model", "base_url": base_url}},
        agents=[{"name": "assistant"}, {"name": "user_proxy", "kind": "userproxy"}], receiver="assistant")
    spec.update(overrides)
    return spec


def two_assistants_spec(base_url: str, *, max_messages: int, name: str = "bench",
                        model: str = "gpt-4o-mini") -> dict[str, Any]:
    """Two assistants in round robin on the server at `base_url`, ended only by `max_messages` (no termination
    text), so that every run makes the same number of model calls."""
    return {
        "name": name,
        "type": "autonomous",
        "models": {"default": {"provider": "openai", "model": model, "base_url": base_url}},
        "agents": [
            {"name": "alice", "kind": "assistant", "model": "default"},
            {"name": "bob", "kind": "assistant", "model": "default"},
        ],
        "sender": "alice",
        "receiver": "bob",
        "termination": {"text": None, "max_messages": max_messages},
        "summary_method": "last",
    }
