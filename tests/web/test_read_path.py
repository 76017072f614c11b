"""The hot read path, GET /api/v1/sessions/{id}/messages, and the per-request layers every request crosses."""

import inspect
import os
import re
from contextlib import asynccontextmanager

import fastapi.dependencies.utils
import fastapi.routing
import pytest
from autobots.web.idempotency import IdempotencyMiddleware
from autobots.web.metrics import MAX_CACHED_LABELS, Metrics
from fastapi.routing import APIRoute

from tests.support.api import create_session, send_and_wait

OTHER = {"X-User-Id": "mallory"}
ON_POSTGRES = "postgresql" in os.environ.get("AUTOBOTS_DATABASE_URL", "")


def _calls(dependant):
    yield dependant.call
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router
            yield from _api_routes(route.original_router.routes)


async def test_no_route_resolves_a_dependency_in_the_thread_pool(app):
    """A plain `def` dependency or endpoint costs a thread hop per request; nothing of ours needs one."""
    routes = list(_api_routes(app.routes))
    assert any(route.path == "/api/v1/sessions/{session_id}/messages" for route in routes)
    for route in routes:
        for call in _calls(route.dependant):
            assert inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call), (route.path, call)


async def test_reading_messages_never_hops_to_the_thread_pool(client, monkeypatch):
    session = await create_session(client)
    hops = []

    async def recording(function, *args, **kwargs):
        hops.append(function)
        return function(*args, **kwargs)

    monkeypatch.setattr(fastapi.dependencies.utils, "run_in_threadpool", recording)
    monkeypatch.setattr(fastapi.routing, "run_in_threadpool", recording)
    response = await client.get(f"/api/v1/sessions/{session['id']}/messages")
    assert response.status_code == 200 and hops == []


class TestMessageList:
    async def test_pages_follow_the_cursors(self, client):
        session = await create_session(client)
        for question in ("What is 1+1?", "What is 2+2?", "What is 3+3?"):
            await send_and_wait(client, session["id"], question)
        url = f"/api/v1/sessions/{session['id']}/messages"
        everything = (await client.get(url, params={"limit": 100, "order": "asc"})).json()
        ids = [m["id"] for m in everything["data"]]
        assert len(ids) == 6 and everything["has_more"] is False
        first = (await client.get(url, params={"limit": 2, "order": "asc"})).json()
        assert [m["id"] for m in first["data"]] == ids[:2]
        assert (first["first_id"], first["last_id"], first["has_more"]) == (ids[0], ids[1], True)
        second = (await client.get(url, params={"limit": 2, "order": "asc", "after": first["last_id"]})).json()
        assert [m["id"] for m in second["data"]] == ids[2:4]
        newest = (await client.get(url, params={"limit": 2})).json()
        assert [m["id"] for m in newest["data"]] == [ids[5], ids[4]]
        before = (await client.get(url, params={"limit": 2, "order": "asc", "before": ids[4]})).json()
        assert [m["id"] for m in before["data"]] == ids[2:4] and before["has_more"] is True

    async def test_bad_paging_is_422_in_the_error_shape(self, client):
        session = await create_session(client)
        url = f"/api/v1/sessions/{session['id']}/messages"
        for params, param in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"order": "up"}, "order"),
                              ({"after": "x" * 65}, "after")):
            response = await client.get(url, params=params)
            assert response.status_code == 422, params
            assert response.json()["error"]["param"] == param and response.headers["x-request-id"]

    async def test_is_json_with_a_request_id(self, client):
        session = await create_session(client)
        response = await client.get(f"/api/v1/sessions/{session['id']}/messages")
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-request-id"].startswith("req_")
        assert response.json() == {"object": "list", "data": [], "first_id": None, "last_id": None,
                                   "has_more": False}

    @pytest.mark.skipif(ON_POSTGRES, reason="the cache is only on for SQLite")
    async def test_a_cached_list_is_served_without_a_database_session(self, client, app, monkeypatch):
        session = await create_session(client)
        await send_and_wait(client, session["id"], "What is 1+1?")
        url = f"/api/v1/sessions/{session['id']}/messages"
        warm = await client.get(url)
        db = app.state.services.db
        opened = []
        original = db.read_session

        @asynccontextmanager
        async def counting():
            opened.append(1)
            async with original() as session:
                yield session

        monkeypatch.setattr(db, "read_session", counting)
        again = await client.get(url)
        assert again.status_code == 200 and again.content == warm.content and opened == []
        stranger = await client.get(url, headers=OTHER)
        assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "session_not_found"
        assert opened  # the cache knows the owner; anyone else is checked against the database

    async def test_another_users_session_is_404_even_when_cached(self, client):
        session = await create_session(client)
        url = f"/api/v1/sessions/{session['id']}/messages"
        assert (await client.get(url)).status_code == 200
        response = await client.get(url, headers=OTHER)
        assert response.status_code == 404
        assert response.json()["error"] == {"type": "not_found_error", "code": "session_not_found",
                                            "param": "session_id",
                                            "message": f"no session with id '{session['id']}'"}


class TestRequestContext:
    async def test_a_get_bypasses_idempotency_handling_but_gets_a_request_id(self, client, monkeypatch):
        seen = []
        handle = IdempotencyMiddleware.__call__

        async def recording(self, scope, receive, send):
            seen.append(scope["method"])
            await handle(self, scope, receive, send)

        monkeypatch.setattr(IdempotencyMiddleware, "__call__", recording)
        bad_key = {"Idempotency-Key": "x" * 300}  # a POST with it is refused with 400
        response = await client.get("/api/v1/sessions", headers=bad_key)
        assert response.status_code == 200 and "idempotent-replayed" not in response.headers
        assert response.headers["x-request-id"]
        missing = await client.get("/api/v1/sessions/ses_nope/messages", headers=bad_key)
        assert missing.status_code == 404 and missing.headers["x-request-id"]
        post = await client.post("/api/v1/sessions", json={}, headers=bad_key)
        assert post.status_code == 400 and post.json()["error"]["code"] == "invalid_idempotency_key"
        assert post.headers["x-request-id"]
        assert seen == ["POST"]

    async def test_generated_request_ids_differ(self, client):
        ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3 and all(re.fullmatch(r"req_[0-9a-f]{32}", i) for i in ids)

    async def test_a_long_request_id_is_cut_to_100_characters(self, client):
        response = await client.get("/healthz", headers={"x-request-id": "r" * 150})
        assert response.headers["x-request-id"] == "r" * 100

    async def test_a_streamed_body_over_the_limit_is_413(self, client):
        async def chunks():
            for _ in range(40):
                yield b"x" * 10_000  # no content-length: the limit is enforced while reading

        response = await client.post("/api/v1/workflows", content=chunks(),
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large" and response.headers["x-request-id"]

    async def test_metrics_count_each_request_and_its_latency(self, client):
        session = await create_session(client)
        for _ in range(3):
            await client.get(f"/api/v1/sessions/{session['id']}/messages")
        await client.get("/api/v1/sessions/ses_nope/messages")
        text = (await client.get("/metrics")).text
        route = 'method="GET",route="/api/v1/sessions/{session_id}/messages"'
        assert f'autobots_http_requests_total{{{route},status="200"}} 3.0' in text
        assert f'autobots_http_requests_total{{{route},status="404"}} 1.0' in text
        assert f'autobots_http_request_duration_seconds_count{{{route}}} 4.0' in text


def test_request_metrics_keep_a_bounded_number_of_label_sets_in_hand():
    metrics = Metrics()
    for i in range(MAX_CACHED_LABELS + 50):
        metrics.observe_request(f"M{i}", "unmatched", 405, 0.001)
    metrics.observe_request("GET", "/healthz", 200, 0.001)
    metrics.observe_request("GET", "/healthz", 200, 0.001)
    assert len(metrics._request_children) == MAX_CACHED_LABELS
    text = metrics.render().decode()
    assert 'autobots_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in text
    last = f"M{MAX_CACHED_LABELS + 49}"
    assert f'autobots_http_requests_total{{method="{last}",route="unmatched",status="405"}} 1.0' in text
