"""API keys, local mode, and the loopback rule."""

import httpx
import pytest
from autobots.users import service as user_service
from autobots.web import create_app
from autobots.web.app import UnsafeConfiguration, check_safe

from tests.support.api import make_key
from tests.support.specs import sequential_spec


@pytest.fixture
async def apikey_app(settings):
    application = create_app(settings.model_copy(update={"auth_mode": "apikey"}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def apikey_client(apikey_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apikey_app), base_url="http://t") as http:
        yield http


class TestApiKeyMode:
    async def test_missing_key_is_401(self, apikey_client):
        response = await apikey_client.get("/api/v1/workflows")
        assert response.status_code == 401
        assert response.json() == {"error": {
            "type": "authentication_error", "code": "missing_api_key", "param": None,
            "message": "an API key is required: send 'Authorization: Bearer <api key>'"}}

    async def test_wrong_key_is_401(self, apikey_client):
        response = await apikey_client.get("/api/v1/workflows", headers={"Authorization": "Bearer ab-nope"})
        assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"

    async def test_x_user_id_is_ignored(self, apikey_client):
        response = await apikey_client.get("/api/v1/workflows", headers={"X-User-Id": "alice"})
        assert response.status_code == 401

    async def test_key_works_and_users_are_isolated(self, apikey_app, apikey_client):
        alice = {"Authorization": f"Bearer {await make_key(apikey_app, 'alice')}"}
        bob = {"Authorization": f"Bearer {await make_key(apikey_app, 'bob')}"}
        created = await apikey_client.post("/api/v1/workflows", json=sequential_spec(), headers=alice)
        assert created.status_code == 201
        workflow_id = created.json()["id"]
        assert (await apikey_client.get(f"/api/v1/workflows/{workflow_id}", headers=alice)).status_code == 200
        assert (await apikey_client.get(f"/api/v1/workflows/{workflow_id}", headers=bob)).status_code == 404
        assert (await apikey_client.get("/api/v1/workflows", headers=bob)).json()["data"] == []

    async def test_keys_are_stored_hashed(self, apikey_app):
        key = await make_key(apikey_app, "carol")
        from autobots.db.tables import ApiKey
        from sqlmodel import select

        async with apikey_app.state.services.db.session() as session:
            stored = (await session.exec(select(ApiKey))).all()
        assert stored and all(key not in (row.key_hash, row.prefix) for row in stored)
        assert stored[0].key_hash == user_service.hash_key(key)


class TestLocalMode:
    async def test_x_user_id_selects_the_user(self, client):
        await client.post("/api/v1/workflows", json=sequential_spec(), headers={"X-User-Id": "dora"})
        assert len((await client.get("/api/v1/workflows", headers={"X-User-Id": "dora"})).json()["data"]) == 1
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    def test_refused_beyond_loopback(self, settings):
        with pytest.raises(UnsafeConfiguration, match="loopback"):
            check_safe(settings.model_copy(update={"host": "0.0.0.0"}))

    @pytest.mark.parametrize("host", ["127.attacker.example", "127.0.0.1.nip.io", "127.0.0.1x", "0.0.0.0", "::",
                                      "192.168.1.10", "example.com"])
    def test_a_name_that_only_looks_like_loopback_is_refused(self, settings, host):
        assert not settings.model_copy(update={"host": host}).listens_on_loopback
        with pytest.raises(UnsafeConfiguration, match="loopback"):
            check_safe(settings.model_copy(update={"host": host}))

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost", "::ffff:127.0.0.1"])
    def test_literal_loopback_addresses_and_localhost_are_allowed(self, settings, host):
        assert settings.model_copy(update={"host": host}).listens_on_loopback
        check_safe(settings.model_copy(update={"host": host}))

    def test_apikey_mode_may_listen_anywhere(self, settings):
        check_safe(settings.model_copy(update={"host": "0.0.0.0", "auth_mode": "apikey"}))
