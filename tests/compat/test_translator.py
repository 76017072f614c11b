"""Seed flow_config -> WorkflowSpec translation (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from autobots.compat.flow_config import parse_flow_config
from autobots.compat.translator import code_execution_of, sanitize_name, to_workflow
from autobots.errors import InvalidWorkflowSpec
from autobots.models.schemas import ModelConfig
from autobots.workflows import check_spec

SCRIPTED = ModelConfig(provider="scripted", model="scripted")
CODER_PROMPT = "You are a helpful AI assistant. Solve tasks using your coding and language skills."


def userproxy(name: str = "user_proxy", **config: Any) -> dict[str, Any]:
    return {"type": "userproxy", "config": {"name": name, "llm_config": False, "human_input_mode": "NEVER",
                                            "max_consecutive_auto_reply": 10, "system_message": "",
                                            "code_execution_config": "local", **config}}


def assistant(name: str = "primary_assistant", model: str = "gpt-4", **config: Any) -> dict[str, Any]:
    return {"type": "assistant", "config": {"name": name, "llm_config": {"config_list": [{"model": model}],
                                                                          "temperature": 0.1},
                                            "code_execution_config": False, "system_message": CODER_PROMPT,
                                            **config}}


def linked(agent: dict[str, Any], role: str) -> dict[str, Any]:
    return {"agent": agent, "link": {"agent_type": role}}


def translate(data: dict[str, Any], *, key: bool = False, default: ModelConfig = SCRIPTED) -> dict[str, Any]:
    spec = to_workflow(parse_flow_config(data), default_model=default, openai_key_available=key).spec
    valid, errors = check_spec(spec)
    assert valid is not None, errors
    return spec


class TestSanitizeName:
    def test_replaces_and_prefixes(self) -> None:
        assert sanitize_name("Primary Assistant-1") == "Primary_Assistant_1"
        assert sanitize_name("1st") == "agent_1st"
        assert sanitize_name("  ") == "agent"


class TestCodeExecution:
    def test_mapping(self) -> None:
        assert code_execution_of(False) is None
        assert code_execution_of(None) is None
        assert code_execution_of("docker") == {"sandbox": "docker"}
        assert code_execution_of("local") == {}
        assert code_execution_of({"work_dir": "x", "use_docker": False, "timeout": 9999}) == {"timeout_s": 3600}


class TestAutonomous:
    def test_old_shape_sender_and_receiver_objects(self) -> None:
        spec = translate({"name": "General Agent Workflow", "type": "default",
                          "sender": userproxy(), "receiver": assistant()})
        assert spec["type"] == "autonomous"
        assert spec["sender"] == "user_proxy" and spec["receiver"] == "primary_assistant"
        assert spec["models"] == {"default": {"endpoint": "default"}}  # the server default, an operator entry
        proxy, helper = spec["agents"]
        assert proxy["kind"] == "userproxy" and proxy["code_execution"] == {}
        assert helper["model"] == "default" and helper["system_message"] == CODER_PROMPT
        assert "model gpt-4 unavailable (no API key): using server default scripted" in spec["description"]
        assert spec["termination"] == {"max_messages": 10}

    def test_linked_agents_with_names(self) -> None:
        spec = translate({"name": "w", "type": "autonomous", "sender": "user proxy", "receiver": "primary_assistant",
                          "agents": [linked(userproxy("user proxy"), "sender"), linked(assistant(), "receiver")]})
        assert spec["sender"] == "user_proxy" and spec["receiver"] == "primary_assistant"

    def test_roles_from_links_alone(self) -> None:
        spec = translate({"name": "w", "agents": [linked(userproxy(), "sender"), linked(assistant(), "receiver")]})
        assert (spec["sender"], spec["receiver"]) == ("user_proxy", "primary_assistant")

    def test_inline_key_and_base_url_keep_the_model(self) -> None:
        helper = assistant()
        helper["config"]["llm_config"]["config_list"] = [{"model": "gpt-4", "api_key": "sk-x",
                                                          "base_url": "http://127.0.0.1:1/v1"}]
        spec = translate({"name": "w", "sender": userproxy(), "receiver": helper})
        assert spec["models"]["default"] == {"provider": "openai", "model": "gpt-4", "api_key": "sk-x",
                                             "base_url": "http://127.0.0.1:1/v1", "temperature": 0.1}
        assert "description" not in spec

    def test_server_key_keeps_the_model(self) -> None:
        spec = translate({"name": "w", "sender": userproxy(), "receiver": assistant()}, key=True)
        assert spec["models"]["default"] == {"provider": "openai", "model": "gpt-4", "temperature": 0.1}

    def test_distinct_models_get_distinct_entries(self) -> None:
        group = {"type": "groupchat", "config": {"name": "manager"},
                 "groupchat_config": {"agents": [assistant("a", "gpt-4"), assistant("b", "gpt-3.5-turbo")],
                                      "speaker_selection_method": "round_robin"}}
        spec = translate({"name": "w", "sender": userproxy(), "receiver": group}, key=True)
        assert set(spec["models"]) == {"default", "gpt_3_5_turbo"}

    def test_docker_and_human_input(self) -> None:
        spec = translate({"name": "w", "sender": userproxy(code_execution_config="docker", human_input_mode="ALWAYS"),
                          "receiver": assistant()})
        assert spec["agents"][0]["code_execution"] == {"sandbox": "docker"}
        assert "human_input_mode" not in spec["agents"][0]
        assert "human_input_mode ALWAYS treated as NEVER" in spec["description"]

    def test_max_consecutive_auto_reply_is_bounded(self) -> None:
        spec = translate({"name": "w", "sender": userproxy(max_consecutive_auto_reply=0), "receiver": assistant()})
        assert spec["termination"] == {"max_messages": 1}


class TestGroupChat:
    def test_groupchat_receiver(self) -> None:
        group = {"type": "groupchat", "config": {"name": "group chat manager",
                                                 "llm_config": {"config_list": [{"model": "gpt-4"}]}},
                 "groupchat_config": {"agents": [assistant("coder"), assistant("critic")], "max_round": 12,
                                      "speaker_selection_method": "random", "allow_repeat_speaker": True}}
        spec = translate({"name": "g", "type": "groupchat", "sender": userproxy(), "receiver": group})
        assert spec["receiver"] == "group_chat_manager"
        assert spec["groupchat"] == {"name": "group_chat_manager", "agents": ["coder", "critic"],
                                     "speaker_selection": "auto", "allow_repeat_speaker": True, "model": "default"}
        assert spec["termination"] == {"max_messages": 12}
        assert "speaker_selection_method random treated as auto" in spec["description"]

    def test_members_under_agents_with_links(self) -> None:
        group = {"type": "groupchat", "name": "team", "config": {"name": "team"},
                 "agents": [linked(assistant("planner"), "receiver"), assistant("coder")]}
        spec = translate({"name": "g", "sender": "user_proxy", "receiver": "team",
                          "agents": [linked(userproxy(), "sender"), linked(group, "receiver")]})
        assert spec["groupchat"]["agents"] == ["planner", "coder"]
        assert spec["groupchat"]["model"] == "default"

    def test_groupchat_without_sender(self) -> None:
        group = {"type": "groupchat", "config": {"name": "team"}, "agents": [assistant("a"), assistant("b")]}
        spec = translate({"name": "g", "agents": [linked(group, "receiver")]})
        assert spec["type"] == "groupchat" and spec["sender"] is None and spec["receiver"] is None

    def test_two_groupchats_are_refused(self) -> None:
        group = {"type": "groupchat", "config": {"name": "g1"}, "agents": [assistant("a")]}
        other = {"type": "groupchat", "config": {"name": "g2"}, "agents": [assistant("b")]}
        with pytest.raises(InvalidWorkflowSpec) as caught:
            translate({"name": "g", "agents": [linked(group, "receiver"), linked(other, "receiver")]})
        assert caught.value.errors == [{"path": "flow_config.agents[1].agent",
                                        "message": "only one groupchat agent is supported"}]


class TestSequential:
    def test_receivers_become_steps(self) -> None:
        spec = translate({"name": "s", "type": "sequential", "sender": "user_proxy",
                          "agents": [linked(userproxy(code_execution_config=False), "sender"),
                                     linked(assistant("researcher"), "receiver"),
                                     linked(assistant("writer"), "receiver")]})
        assert spec["type"] == "sequential"
        assert spec["steps"] == ["researcher", "writer"] and spec["sender"] == "user_proxy"
        assert "code_execution" not in spec["agents"][0]


class TestErrors:
    def test_invalid_shape_names_the_path(self) -> None:
        with pytest.raises(InvalidWorkflowSpec) as caught:
            parse_flow_config({"name": "w", "agents": [linked({"type": "robot", "config": {"name": "x"}}, "sender")]})
        assert caught.value.errors[0]["path"] == "flow_config.agents[0].agent.type"
        assert caught.value.message.startswith("flow_config.agents[0].agent.type: ")

    def test_union_tags_are_not_in_paths(self) -> None:
        with pytest.raises(InvalidWorkflowSpec) as caught:
            parse_flow_config({"name": "w", "sender": {"config": {"name": "x"}}})
        assert caught.value.errors == [{"path": "flow_config.sender.type", "message": "Field required"}]

    def test_nameless_agent(self) -> None:
        with pytest.raises(InvalidWorkflowSpec) as caught:
            to_workflow(parse_flow_config({"name": "w", "sender": {"type": "userproxy", "config": {}}}),
                        default_model=SCRIPTED, openai_key_available=False)
        assert caught.value.errors == [{"path": "flow_config.sender.config.name", "message": "an agent needs a name"}]

    def test_spec_errors_map_back_to_seed_paths(self) -> None:
        helper = assistant()
        helper["config"]["llm_config"]["temperature"] = 5
        translation = to_workflow(parse_flow_config({"name": "w", "sender": userproxy(), "receiver": helper}),
                                  default_model=ModelConfig(provider="openai", model="gpt-4o-mini"),
                                  openai_key_available=True)
        _, errors = check_spec(translation.spec)
        assert translation.seed_errors(errors)[0]["path"] == "flow_config.receiver.config.llm_config.temperature"

    def test_unknown_receiver_maps_to_receiver(self) -> None:
        translation = to_workflow(parse_flow_config({"name": "w", "sender": userproxy(), "receiver": "nobody"}),
                                  default_model=SCRIPTED, openai_key_available=False)
        _, errors = check_spec(translation.spec)
        assert translation.seed_errors(errors) == [
            {"path": "flow_config.receiver",
             "message": "'nobody' is neither an agent nor the groupchat of this workflow"}]
