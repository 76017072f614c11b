"""/healthz, /readyz, /metrics, /openapi.json, and the error shape for unknown routes."""

from collections.abc import AsyncIterator

import httpx
import pytest


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.json() == {"status": "ok"} and response.headers["x-request-id"]


async def test_readyz_names_the_sandbox_and_the_stand_in_model(client):
    body = (await client.get("/readyz")).json()
    assert body["status"] == "ready" and body["checks"]["database"]["ok"] is True
    assert body["checks"]["sandbox"]["backend"] == "local"
    assert body["checks"]["sandbox"]["isolated"] is False
    assert body["checks"]["default_model"]["provider"] == "scripted"
    assert "stand-in" in body["checks"]["default_model"]["note"]
    assert body["checks"]["runs"] == {"ok": True, "executor": "in-process", "live_runs": 0}


async def test_metrics_counts_requests(client):
    await client.get("/healthz")
    text = (await client.get("/metrics")).text
    assert 'autobots_http_requests_total{method="GET",route="/healthz",status="200"}' in text


async def test_openapi_documents_the_contract(client):
    document = (await client.get("/openapi.json")).json()
    paths = document["paths"]
    for path in ("/api/v1/workflows", "/api/v1/workflows/validate", "/api/v1/sessions/{session_id}/messages",
                 "/api/v1/runs/{run_id}/events", "/api/v1/runs/{run_id}/cancel", "/api/v1/gallery",
                 "/api/v1/sessions/{session_id}/publish", "/healthz", "/readyz"):
        assert path in paths, path
    assert "WorkflowSpec" in document["components"]["schemas"]
    body = paths["/api/v1/workflows"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "application/yaml"}


async def test_unknown_route_uses_the_error_shape(client):
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"type": "not_found_error", "message": "Not Found", "param": None,
                                         "code": "not_found"}}


async def test_request_id_is_echoed(client):
    response = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def database_kind(settings) -> str:
    """What /readyz should say: the suite runs on SQLite, and again on PostgreSQL."""
    return "postgresql" if settings.database_url.startswith("postgresql") else "sqlite"


async def test_readyz_names_the_database_kind_never_its_location(client, settings):
    body = (await client.get("/readyz")).json()
    assert body["checks"]["database"] == {"ok": True, "kind": database_kind(settings)}
    assert settings.database_url not in str(body)


class TestOperatorAccessInApiKeyMode:
    """In apikey mode /readyz's details and /metrics are for whoever holds the operator key."""

    OPERATOR_KEY = "op-3f6b1c0e9a7d4e2b8c5a"

    @pytest.fixture
    async def apikey_client(self, settings, monkeypatch) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
        from autobots.users import service as user_service
        from autobots.web import create_app

        monkeypatch.setenv("AUTOBOTS_TEST_OPERATOR_KEY", self.OPERATOR_KEY)
        application = create_app(settings.model_copy(update={"auth_mode": "apikey",
                                                             "operator_key_env": "AUTOBOTS_TEST_OPERATOR_KEY"}))
        async with application.router.lifespan_context(application):
            async with application.state.services.db.session() as session:
                user = await user_service.get_or_create(session, name="alice")
                user_key = await user_service.create_api_key(session, user=user)
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://autobots.example") as http:
                yield http, user_key

    @pytest.mark.parametrize("authorization", [None, "Bearer op-wrong", "Bearer user-key", "Basic op"])
    async def test_without_the_operator_key_readyz_answers_only_its_status(self, apikey_client, authorization):
        client, user_key = apikey_client
        headers = {"Authorization": authorization.replace("user-key", user_key)} if authorization else {}
        response = await client.get("/readyz", headers=headers)
        assert (response.status_code, response.json()) == (200, {"status": "ready"})

    @pytest.mark.parametrize("authorization", [None, "Bearer op-wrong", "Bearer user-key"])
    async def test_without_the_operator_key_metrics_is_401(self, apikey_client, authorization):
        client, user_key = apikey_client
        headers = {"Authorization": authorization.replace("user-key", user_key)} if authorization else {}
        response = await client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": {
            "type": "authentication_error", "code": "operator_key_required", "param": None,
            "message": "/metrics needs the operator key: send 'Authorization: Bearer <operator key>'"}}

    async def test_the_operator_sees_everything_but_the_database_location(self, apikey_client, settings):
        client, _ = apikey_client
        operator = {"Authorization": f"Bearer {self.OPERATOR_KEY}"}
        body = (await client.get("/readyz", headers=operator)).json()
        assert body["status"] == "ready"
        assert body["checks"]["database"] == {"ok": True, "kind": database_kind(settings)}
        assert body["checks"]["sandbox"]["backend"] == "local"
        metrics = await client.get("/metrics", headers=operator)
        assert metrics.status_code == 200 and "autobots_http_requests_total" in metrics.text

    async def test_healthz_stays_open(self, apikey_client):
        client, _ = apikey_client
        assert (await client.get("/healthz")).json() == {"status": "ok"}

    async def test_without_an_operator_key_configured_nobody_is_an_operator(self, settings):
        from autobots.web import create_app

        application = create_app(settings.model_copy(update={"auth_mode": "apikey"}))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://autobots.example") as client:
                headers = {"Authorization": "Bearer "}
                assert (await client.get("/readyz", headers=headers)).json() == {"status": "ready"}
                assert (await client.get("/metrics", headers=headers)).status_code == 401
