"""Seed-era flow configs (AutoGen-assistant `AgentWorkFlowConfig`, see `flow_config`) translated into our
workflow spec.

Pure: no I/O. `to_workflow` returns a spec dict for `workflows.service.validate`, plus the seed path each
part came from, so that validation errors can name the field the seed client actually sent.

Rules (API.md "Seed-era compatibility"):
- agent names become Python identifiers (other characters -> `_`, a leading digit gets `agent_`);
- each distinct llm config (its first `config_list` entry and `temperature`) becomes a `models` entry,
  provider `openai`; one with no `api_key`, no `base_url` and no OpenAI key on the server becomes the
  server's default model instead, and the description says so (offline demos keep working);
- `code_execution_config`: false/None -> none, `"docker"` -> the docker sandbox, anything else truthy
  (`"local"`, a dict) -> the server's configured sandbox: never silently an unsafe one;
- a `groupchat` agent becomes our `groupchat` section (members, speaker selection, `max_round`);
- `sequential`: the agents linked as receivers, in order, are the steps;
- `max_consecutive_auto_reply` of the sender bounds the conversation (`termination.max_messages`);
- `human_input_mode` other than NEVER is accepted and treated as NEVER (no human in the loop).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from autobots.compat.flow_config import AgentWorkFlowConfig, SeedAgent, SeedGroupChatConfig, SeedLLMConfig
from autobots.errors import InvalidWorkflowSpec
from autobots.models.access import DEFAULT_ENDPOINT
from autobots.models.schemas import ModelConfig

MAX_MESSAGES = (1, 1000)


def sanitize_name(raw: str) -> str:
    """A Python identifier for an agent name: 'Primary Assistant-1' -> 'Primary_Assistant_1'."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", raw.strip()) or "agent"
    if name[0].isdigit():
        name = "agent_" + name
    return name[:64]


@dataclass
class Translation:
    """The spec dict, and where (as a seed path) each part of it came from."""

    spec: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)
    at: str = "flow_config"

    def seed_path(self, spec_path: str) -> str:
        """The seed field behind a spec path ('agents[1].model' -> 'flow_config.agents[1].agent.config.llm_config')."""
        for prefix in sorted(self.origins, key=len, reverse=True):
            if spec_path == prefix or spec_path.startswith((prefix + ".", prefix + "[")):
                return self.origins[prefix] + spec_path[len(prefix):]
        return self.at

    def seed_errors(self, errors: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{"path": self.seed_path(e["path"]), "message": e["message"]} for e in errors]


def to_workflow(config: AgentWorkFlowConfig, *, default_model: ModelConfig, openai_key_available: bool,
                at: str = "flow_config") -> Translation:
    """Translate a parsed flow_config into a WorkflowSpec dict (not yet validated).

    Args:
        config: The seed client's workflow.
        default_model: The server's default model (used for llm configs that cannot run here).
        openai_key_available: Whether the server has an OpenAI key configured.
        at: Where `config` sits in the request, for error paths.

    Returns:
        The spec and its origins; pass `translation.spec` to validation, map errors with `seed_errors`.

    Raises:
        InvalidWorkflowSpec: A shape the spec cannot express (nameless agent, two groupchats, ...).
    """
    return _Translator(default_model, openai_key_available, at).run(config)


class _Translator:
    def __init__(self, default_model: ModelConfig, openai_key_available: bool, at: str) -> None:
        self.default_model = default_model
        self.openai_key_available = openai_key_available
        self.at = at
        self.agents: list[dict[str, Any]] = []
        self.by_raw: dict[str, str] = {}
        self.taken: set[str] = set()
        self.paths: dict[str, str] = {}
        self.seeds: dict[str, SeedAgent] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.model_by_fingerprint: dict[str, str] = {}
        self.groupchat: dict[str, Any] | None = None
        self.group_seed: SeedAgent | None = None
        self.origins: dict[str, str] = {"sender": f"{at}.sender", "receiver": f"{at}.receiver",
                                        "steps": f"{at}.agents", "termination": at, "name": f"{at}.name",
                                        "description": f"{at}.description"}
        self.notes: list[str] = []

    def run(self, config: AgentWorkFlowConfig) -> Translation:
        roles: list[tuple[str, str]] = []
        for index, link in enumerate(config.agents or []):
            name = self.register(link.agent, f"{self.at}.agents[{index}].agent")
            if link.link is not None and link.link.agent_type:
                roles.append((link.link.agent_type, name))
        sender = self.reference(config.sender, f"{self.at}.sender")
        named = self.receivers(config.receiver)
        sender = sender or next((name for role, name in roles if role == "sender"), None)
        receivers = named or list(dict.fromkeys(name for role, name in roles if role == "receiver"))
        kind = "sequential" if config.type == "sequential" else "autonomous"
        spec: dict[str, Any] = {"name": config.name, "type": kind, "agents": self.agents}
        if config.type == "sequential":
            self.check_steps(receivers)
            spec["steps"] = receivers
        else:
            spec["receiver"] = receivers[0] if receivers else None
            if len(receivers) > 1:
                self.notes.append(f"{config.type} flow: only the first receiver ({receivers[0]}) answers; "
                                  f"{', '.join(receivers[1:])} unused")
        spec["sender"] = sender
        if sender is None and self.groupchat is not None and spec.get("receiver") == self.groupchat["name"]:
            spec.update(type="groupchat", receiver=None)  # a groupchat on its own: no sender to talk to it
        if self.models:
            spec["models"] = self.models
        if self.groupchat is not None:
            spec["groupchat"] = self.groupchat
        termination = self.termination(sender, spec.get("receiver"))
        if termination:
            spec["termination"] = termination
        if config.summary_method in ("last", "llm", "none"):
            spec["summary_method"] = config.summary_method
        description = "; ".join(part for part in (config.description, *self.notes) if part)
        if description:
            spec["description"] = description[:10_000]
        return Translation(spec=spec, origins=self.origins, at=self.at)

    # -- agents ----------------------------------------------------------------------------------------------

    def receivers(self, ref: SeedAgent | list[SeedAgent | str] | str | None) -> list[str]:
        """The receiver's agent names, in order: one agent or name, or a list of them."""
        at = f"{self.at}.receiver"
        refs = [(item, f"{at}[{k}]") for k, item in enumerate(ref)] if isinstance(ref, list) else [(ref, at)]
        names = [self.reference(item, path) for item, path in refs]
        return list(dict.fromkeys(name for name in names if name))

    def reference(self, ref: SeedAgent | str | None, path: str) -> str | None:
        if ref is None:
            return None
        if isinstance(ref, SeedAgent):
            return self.register(ref, path)
        return self.by_raw.get(ref) or self.by_raw.get(sanitize_name(ref)) or ref

    def register(self, agent: SeedAgent, path: str, *, member_of: str | None = None) -> str:
        raw = agent.config.name or agent.name
        if not raw or not raw.strip():
            raise InvalidWorkflowSpec([{"path": f"{path}.config.name", "message": "an agent needs a name"}])
        if raw in self.by_raw:
            self.note_redefinition(self.by_raw[raw], agent, path)
            return self.by_raw[raw]
        if agent.type == "groupchat" and member_of is not None:
            raise InvalidWorkflowSpec([{"path": path, "message": "a groupchat cannot be a member of a groupchat"}])
        name = self.unique(sanitize_name(raw))
        for alias in {raw, agent.name, agent.config.name} - {None}:
            self.by_raw.setdefault(alias, name)  # type: ignore[arg-type]
        self.paths[name], self.seeds[name] = path, agent
        if agent.type == "groupchat":
            self.add_groupchat(agent, name, path)
        else:
            self.add_agent(agent, name, path)
        return name

    def note_redefinition(self, name: str, agent: SeedAgent, path: str) -> None:
        """Say which config an agent defined twice runs with: the first one registered, which is the linked
        `agents` entry's when there is one (as the seed backend did)."""
        first = self.seeds.get(name)
        if first is None:
            return
        differing = sorted(key for key in ("system_message", "llm_config", "code_execution_config",
                                           "max_consecutive_auto_reply", "description")
                           if getattr(first.config, key) != getattr(agent.config, key))
        if differing:
            self.notes.append(f"agent {name}: {path} differs from {self.paths[name]} in {', '.join(differing)}; "
                              f"the config of {self.paths[name]} was used")

    def unique(self, name: str) -> str:
        candidate, counter = name, 2
        while candidate in self.taken:
            candidate, counter = f"{name[:60]}_{counter}", counter + 1
        self.taken.add(candidate)
        return candidate

    def add_agent(self, agent: SeedAgent, name: str, path: str) -> None:
        config, index = agent.config, len(self.agents)
        at = f"agents[{index}]"
        spec: dict[str, Any] = {"name": name, "kind": agent.type}
        self.origins.update({at: f"{path}.config", f"{at}.kind": f"{path}.type"})
        if config.system_message:
            spec["system_message"] = config.system_message
        if config.description or agent.description:
            spec["description"] = config.description or agent.description
        if agent.type == "assistant":
            spec["model"] = self.model_for(config.llm_config, f"{path}.config.llm_config", name)
            self.origins[f"{at}.model"] = f"{path}.config.llm_config"
            if config.code_execution_config:
                self.notes.append(f"agent {name}: code_execution_config ignored (only user proxies run code)")
        else:
            execution = code_execution_of(config.code_execution_config)
            if execution is not None:
                spec["code_execution"] = execution
                self.origins[f"{at}.code_execution"] = f"{path}.config.code_execution_config"
        if config.max_consecutive_auto_reply is not None:
            spec["max_consecutive_auto_reply"] = min(max(config.max_consecutive_auto_reply, 0), 1000)
        if config.human_input_mode and config.human_input_mode.upper() != "NEVER":
            self.notes.append(f"agent {name}: human_input_mode {config.human_input_mode} treated as NEVER "
                              "(no human in the loop)")
        self.agents.append(spec)

    def add_groupchat(self, agent: SeedAgent, name: str, path: str) -> None:
        if self.groupchat is not None:
            raise InvalidWorkflowSpec([{"path": path, "message": "only one groupchat agent is supported"}])
        group_config = agent.groupchat_config or SeedGroupChatConfig()
        members_at, members = next(
            ((at, found) for at, found in ((f"{path}.agents", agent.agents),
                                           (f"{path}.config.agents", agent.config.agents),
                                           (f"{path}.groupchat_config.agents", group_config.agents)) if found),
            (f"{path}.config.agents", []))
        self.groupchat = {"name": name, "agents": []}
        self.group_seed = agent
        self.origins.update({"groupchat": path, "groupchat.name": f"{path}.config.name",
                             "groupchat.agents": members_at, "groupchat.model": f"{path}.config.llm_config"})
        names = [self.register(member, f"{members_at}[{k}]", member_of=name) for k, member in enumerate(members)]
        extra = {**(agent.config.model_extra or {}), **(group_config.model_extra or {})}
        method = group_config.speaker_selection_method or extra.get("speaker_selection_method") or "auto"
        selection = method if method in ("auto", "round_robin") else "auto"
        if method != selection:
            self.notes.append(f"groupchat {name}: speaker_selection_method {method} treated as auto")
        self.groupchat.update({"agents": names, "speaker_selection": selection,
                               "allow_repeat_speaker": group_config.allow_repeat_speaker is True})
        if agent.config.description or agent.description:
            self.groupchat["description"] = agent.config.description or agent.description
        if selection == "auto":
            self.groupchat["model"] = self.selector_model(agent, path, names)

    def selector_model(self, agent: SeedAgent, path: str, members: list[str]) -> str:
        if agent.config.llm_config:
            return self.model_for(agent.config.llm_config, f"{path}.config.llm_config", agent.config.name or "")
        for spec in self.agents:
            if spec["name"] in members and spec.get("model"):
                return str(spec["model"])
        return self.model_for(None, f"{path}.config.llm_config", None)

    def check_steps(self, steps: list[str]) -> None:
        if self.groupchat is not None and self.groupchat["name"] in steps:
            raise InvalidWorkflowSpec([{"path": self.paths[self.groupchat["name"]],
                                        "message": "a groupchat cannot be a step of a sequential flow"}])

    # -- models and termination -----------------------------------------------------------------------------

    def model_for(self, llm: SeedLLMConfig | bool | None, path: str, agent: str | None) -> str:
        entries = llm.config_list if isinstance(llm, SeedLLMConfig) else []
        temperature = llm.temperature if isinstance(llm, SeedLLMConfig) else None
        if not entries:
            entry = self.server_default(temperature)
            if agent:
                self.notes.append(f"agent {agent}: no llm_config model: "
                                  f"using server default {self.default_model.model}")
        else:
            first = entries[0]
            key = first.api_key.get_secret_value() if first.api_key else None
            base_url = first.base_url or first.api_base
            if len(entries) > 1:
                self.notes.append(f"{agent or 'groupchat'}: only the first config_list entry ({first.model}) is used")
            if not key and not base_url and not self.openai_key_available:
                entry = self.server_default(temperature)
                self.notes.append(f"model {first.model} unavailable (no API key): "
                                  f"using server default {self.default_model.model}")
            else:
                entry = {"provider": "openai", "model": first.model, "base_url": base_url, "api_key": key,
                         "temperature": temperature}
        entry = {k: v for k, v in entry.items() if v is not None}
        fingerprint = json.dumps(entry, sort_keys=True)
        if fingerprint in self.model_by_fingerprint:
            return self.model_by_fingerprint[fingerprint]
        label = entry.get("model") or self.default_model.model or "default"
        name = "default" if not self.models else self.unique_model(sanitize_name(str(label)))
        self.models[name], self.model_by_fingerprint[fingerprint] = entry, name
        self.origins[f"models.{name}"] = f"{path}.config_list[0]" if entries else path
        self.origins[f"models.{name}.temperature"] = f"{path}.temperature"
        return name

    def unique_model(self, name: str) -> str:
        candidate, counter = name, 2
        while candidate in self.models:
            candidate, counter = f"{name}_{counter}", counter + 1
        return candidate

    def server_default(self, temperature: float | None) -> dict[str, Any]:
        """A reference to the server's default model: an operator entry, so it keeps the operator's key and
        address whatever the auth mode."""
        entry: dict[str, Any] = {"endpoint": DEFAULT_ENDPOINT}
        if temperature is not None and self.default_model.provider != "scripted":
            entry["temperature"] = temperature
        return entry

    def termination(self, sender: str | None, receiver: str | None) -> dict[str, Any]:
        bound: int | None = None
        seed = self.seeds.get(sender or "")
        if seed is not None and seed.config.max_consecutive_auto_reply is not None:
            bound = seed.config.max_consecutive_auto_reply
            self.origins["termination.max_messages"] = f"{self.paths[sender or '']}.config.max_consecutive_auto_reply"
        group = self.group_seed
        if group is not None and self.groupchat is not None and receiver == self.groupchat["name"]:
            rounds = (group.groupchat_config.max_round if group.groupchat_config else None) or \
                (group.config.model_extra or {}).get("max_round")
            if isinstance(rounds, int):
                bound = rounds
                self.origins["termination.max_messages"] = f"{self.paths[receiver]}.groupchat_config.max_round"
        if bound is None:
            return {}
        return {"max_messages": min(max(bound, MAX_MESSAGES[0]), MAX_MESSAGES[1])}


def code_execution_of(value: bool | str | dict[str, Any] | None) -> dict[str, Any] | None:
    """false/None -> None; "docker" -> docker; any other truthy value -> the server's configured sandbox."""
    if not value:
        return None
    if isinstance(value, str) and value.strip().lower() == "docker":
        return {"sandbox": "docker"}
    execution: dict[str, Any] = {}
    if isinstance(value, dict) and isinstance(value.get("timeout"), int) and not isinstance(value["timeout"], bool):
        execution["timeout_s"] = min(max(value["timeout"], 1), 3600)
    return execution

