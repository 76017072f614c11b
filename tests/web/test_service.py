"""/healthz, /readyz, /metrics, /openapi.json, and the error shape for unknown routes."""


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
