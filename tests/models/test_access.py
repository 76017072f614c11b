"""Who may reach what: address refusal, spec entry rules in apikey mode, keys, and the connection guard."""

from __future__ import annotations

import ipaddress

import httpx2
import pytest
from autobots.config import Settings
from autobots.models import ModelAccess, ModelConfigError, Persona, create_model_client
from autobots.models._addresses import (
    GuardedNetworkBackend,
    RefusedAddress,
    check_host,
    guarded_transport_httpx2,
    refusal,
)
from autobots.models.schemas import ModelConfig
from autogen_core.models import UserMessage

from tests.support.openai_server import FakeOpenAIServer

PERSONA = Persona(name="assistant")


def restricted(**overrides: object) -> ModelAccess:
    return ModelAccess.from_settings(Settings(auth_mode="apikey", **overrides))  # type: ignore[arg-type]


def entry_errors(access: ModelAccess, **fields: object) -> list[dict[str, str]]:
    return list(access.entry_errors("m", ModelConfig.model_validate(fields)))


class TestRefusal:
    @pytest.mark.parametrize("address", [
        "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "240.0.0.1", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::7f00:1", "2002:7f00:1::", "2001:db8::1",
    ])
    def test_private_and_special_addresses_are_refused(self, address: str) -> None:
        assert refusal(ipaddress.ip_address(address)) is not None

    @pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    def test_public_addresses_are_allowed(self, address: str) -> None:
        assert refusal(ipaddress.ip_address(address)) is None

    @pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f000001", "127.1", "localhost"])
    async def test_other_spellings_of_loopback_are_refused_once_resolved(self, host: str) -> None:
        with pytest.raises(RefusedAddress, match="loopback"):
            await check_host(host, 80)

    async def test_one_private_answer_among_public_ones_is_refused(self) -> None:
        async def answers(host: str, port: int) -> list[str]:
            return ["93.184.216.34", "10.0.0.5"]

        with pytest.raises(RefusedAddress, match="private"):
            await check_host("mixed.example", 80, answers)


class TestSpecEntries:
    def test_local_mode_accepts_any_address_and_variable(self) -> None:
        access = ModelAccess.from_settings(Settings(auth_mode="local"))
        assert entry_errors(access, provider="openai", model="m", base_url="http://127.0.0.1:1/v1",
                            api_key_env="HOME") == []

    def test_key_variable_outside_the_allowed_list_is_refused(self) -> None:
        errors = entry_errors(restricted(), provider="openai", model="m", api_key_env="HOME")
        assert [e["path"] for e in errors] == ["models.m.api_key_env"]
        assert "allowed_key_envs: none" in errors[0]["message"]

    def test_allowed_key_variable_and_the_providers_own_are_accepted(self) -> None:
        access = restricted(allowed_key_envs=["TEAM_OPENAI_KEY"])
        assert entry_errors(access, provider="openai", model="m", api_key_env="TEAM_OPENAI_KEY") == []
        assert entry_errors(access, provider="openai", model="m", api_key_env="OPENAI_API_KEY") == []

    def test_own_base_url_with_a_key_variable_is_refused(self) -> None:
        access = restricted(allowed_key_envs=["TEAM_OPENAI_KEY"])
        errors = entry_errors(access, provider="openai", model="m", base_url="https://93.184.216.34/v1",
                              api_key_env="TEAM_OPENAI_KEY")
        assert [e["path"] for e in errors] == ["models.m.api_key_env"]

    @pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "http://[::1]/v1", "http://169.254.169.254/",
                                     "http://[::ffff:10.0.0.1]/v1", "http://0.0.0.0:5432/"])
    def test_literal_private_base_url_is_refused(self, url: str) -> None:
        errors = entry_errors(restricted(), provider="openai", model="m", base_url=url)
        assert [e["path"] for e in errors] == ["models.m.base_url"]

    def test_ollama_without_base_url_means_the_servers_loopback(self) -> None:
        errors = entry_errors(restricted(), provider="ollama", model="llama3")
        assert [e["path"] for e in errors] == ["models.m.base_url"]

    def test_url_under_an_allowed_prefix_is_accepted(self) -> None:
        access = restricted(allowed_base_urls=["http://127.0.0.1:11434/"])
        assert entry_errors(access, provider="openai", model="m", base_url="http://127.0.0.1:11434/v1") == []

    @pytest.mark.parametrize("url", ["http://127.0.0.1:114345/v1", "http://127.0.0.1:11434@10.0.0.1/v1",
                                     "https://127.0.0.1:11434/v1", "http://127.0.0.1:1143/v1"])
    def test_allowed_prefix_is_compared_by_host_port_and_scheme(self, url: str) -> None:
        access = restricted(allowed_base_urls=["http://127.0.0.1:11434"])
        assert not access.base_url_allowed(url)

    def test_allowed_prefix_path_ends_at_a_segment(self) -> None:
        access = restricted(allowed_base_urls=["http://127.0.0.1:8000/team"])
        assert access.base_url_allowed("http://127.0.0.1:8000/team/v1")
        assert not access.base_url_allowed("http://127.0.0.1:8000/teamB/v1")

    async def test_host_name_resolving_to_loopback_is_refused(self) -> None:
        spec_models = {"m": ModelConfig(provider="openai", model="m", base_url="http://localhost:9/v1")}
        errors = await restricted().address_errors(spec_models)
        assert [e["path"] for e in errors] == ["models.m.base_url"]
        assert "localhost (127.0.0.1) is a loopback address" in errors[0]["message"]

    def test_unknown_endpoint_is_refused_naming_the_offered_ones(self) -> None:
        access = restricted(model_endpoints={"team": {"provider": "scripted", "model": "scripted"}})
        errors = entry_errors(access, endpoint="nope")
        assert errors == [{"path": "models.m.endpoint",
                           "message": "unknown endpoint 'nope'; this server offers: default, team"}]

    def test_endpoint_reference_takes_only_a_temperature(self) -> None:
        with pytest.raises(ValueError, match="remove base_url"):
            ModelConfig.model_validate({"endpoint": "team", "base_url": "http://10.0.0.1/"})


class TestResolution:
    def test_endpoint_reference_becomes_the_operators_entry(self) -> None:
        access = restricted(model_endpoints={"team": {"provider": "openai", "model": "gpt-x",
                                                      "base_url": "http://10.0.0.7/v1", "api_key_env": "TEAM"}})
        resolved = access.resolve(ModelConfig(endpoint="team", temperature=0.3))
        assert (resolved.model, resolved.base_url, resolved.temperature) == ("gpt-x", "http://10.0.0.7/v1", 0.3)
        assert resolved.from_operator and access.may_read_env(resolved) and not access.needs_guard(resolved)

    def test_default_model_may_name_an_endpoint(self) -> None:
        access = restricted(model_endpoints={"team": {"provider": "scripted", "model": "scripted"}},
                            default_model="team")
        assert access.default.provider == "scripted" and access.default.from_operator

    def test_default_model_naming_no_endpoint_is_a_configuration_error(self) -> None:
        with pytest.raises(ValueError, match="not one of model_endpoints"):
            Settings(default_model="missing")

    def test_invalid_endpoint_entry_is_a_startup_error(self) -> None:
        with pytest.raises(ModelConfigError, match=r"model_endpoints\.bad"):
            restricted(model_endpoints={"bad": {"provider": "nope", "model": "m"}})

    def test_a_users_own_base_url_never_gets_the_servers_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-server")
        access = restricted()
        own = ModelConfig(provider="openai", model="m", base_url="https://93.184.216.34/v1")
        official = ModelConfig(provider="openai", model="m")
        assert access.api_key(own) is None
        assert access.api_key(official) == "sk-server"

    def test_local_mode_keeps_the_old_key_lookup(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOME_KEY", "sk-local")
        access = ModelAccess.from_settings(Settings(auth_mode="local"))
        assert access.api_key(ModelConfig(provider="openai", model="m", base_url="http://127.0.0.1:1/v1",
                                          api_key_env="SOME_KEY")) == "sk-local"


class TestConnectionGuard:
    async def test_a_name_that_changes_its_answer_is_refused_when_connecting(self, fake_openai: FakeOpenAIServer):
        answers = iter([["93.184.216.34"], ["127.0.0.1"]])

        async def rebinding(host: str, port: int) -> list[str]:
            return next(answers)

        await check_host("rebind.example", fake_openai.port, rebinding)  # what validation saw
        transport = guarded_transport_httpx2(rebinding)
        async with httpx2.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx2.ConnectError, match="loopback"):
                await client.get(f"http://rebind.example:{fake_openai.port}/v1/models")
        assert fake_openai.requests == []

    async def test_the_guard_connects_to_the_address_it_checked(self) -> None:
        connected: list[tuple[str, int]] = []

        class RecordingBackend:  # stands for the socket layer below the guard
            async def connect_tcp(self, host: str, port: int, **kwargs: object) -> str:
                connected.append((host, port))
                return "stream"

        async def public(host: str, port: int) -> list[str]:
            return ["93.184.216.34", "8.8.8.8"]

        guard = GuardedNetworkBackend(RecordingBackend(), httpx2.ConnectError, public)
        assert await guard.connect_tcp("pinned.example", 443) == "stream"
        assert connected == [("93.184.216.34", 443)]

    async def test_stored_private_base_url_is_refused_at_run_time_in_apikey_mode(
            self, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-server")
        config = ModelConfig(provider="openai", model="m", base_url=fake_openai.base_url)
        client = create_model_client(config, persona=PERSONA,
                                     settings=Settings(auth_mode="apikey", model_max_retries=0))
        try:
            with pytest.raises(Exception, match=r"(?i)connection"):
                await client.create([UserMessage(content="hi", source="user")])
        finally:
            await client.close()
        assert fake_openai.requests == []

    async def test_allowed_prefix_connects_without_the_servers_key(
            self, fake_openai: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-server")
        config = ModelConfig(provider="openai", model="m", base_url=fake_openai.base_url)
        settings = Settings(auth_mode="apikey", allowed_base_urls=[fake_openai.base_url])
        client = create_model_client(config, persona=PERSONA, settings=settings)
        try:
            await client.create([UserMessage(content="hi", source="user")])
        finally:
            await client.close()
        assert [r.authorization for r in fake_openai.chat_requests()] == ["Bearer not-needed"]
