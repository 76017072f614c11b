"""Bodies of the seed-era `/api` endpoints: autogen-assistant agent and flow configs, and a message to post."""

from __future__ import annotations

from typing import Any

CODER_PROMPT = ("You are a helpful AI assistant. Solve tasks using your coding and language skills. "
                "Suggest python code for the user to execute. Reply TERMINATE when the task is done.")
QUESTION = "What is 12*(3+4)?"


def userproxy(name: str = "user_proxy", **config: Any) -> dict[str, Any]:
    """A seed user proxy that executes code locally and never asks a human."""
    return {"type": "userproxy", "config": {"name": name, "llm_config": False, "human_input_mode": "NEVER",
                                            "max_consecutive_auto_reply": 10, "system_message": "",
                                            "code_execution_config": "local", **config}}


def assistant(name: str = "primary_assistant", **config: Any) -> dict[str, Any]:
    """A seed coding assistant on `gpt-4` (without a key, the server's default model answers)."""
    return {"type": "assistant", "config": {"name": name, "llm_config": {"config_list": [{"model": "gpt-4"}],
                                                                          "temperature": 0.1},
                                            "code_execution_config": False, "human_input_mode": "NEVER",
                                            "max_consecutive_auto_reply": 8, "system_message": CODER_PROMPT,
                                            **config}}


def autonomous_flow(**overrides: Any) -> dict[str, Any]:
    """The autogen-assistant shape: sender and receiver as whole agent objects."""
    return {"name": "General Agent Workflow", "description": "Default workflow", "type": "default",
            "sender": userproxy(), "receiver": assistant(), **overrides}


def message_body(content: str = QUESTION, session_id: str = "seed-session-1", user_id: str = "user@example.com",
                 flow: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `POST /api/messages` body: the user's message and the flow to answer it with."""
    return {"message": {"user_id": user_id, "role": "user", "content": content, "session_id": session_id,
                        "msg_id": "client-msg-1", "root_msg_id": "0", "timestamp": "2023-10-01T00:00:00"},
            "flow_config": flow or autonomous_flow()}
