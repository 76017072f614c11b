"""Per-user quotas: active runs (counted in the database), and the request rate per key (token bucket).

Event-stream quotas need streams held open over a real connection: tests/e2e/test_quotas.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from autobots.db.tables import ChatSession
from autobots.web import create_app
from autobots.web.quotas import MAX_BUCKETS, TokenBuckets
from sqlalchemy import func, select

from tests.support.api import create_session, make_key
from tests.support.seed import message_body
from tests.support.specs import openai_spec

BOB = {"X-User-Id": "bob"}
TOO_MANY_RUNS = {"error": {
    "type": "rate_limit_error", "code": "too_many_active_runs", "param": None,
    "message": "you have 16 active runs (queued or running), the most allowed per user; wait for one to end or "
               "cancel one"}}
RATE_LIMITED = {"error": {
    "type": "rate_limit_error", "code": "rate_limit_exceeded", "param": None,
    "message": "too many requests: at most 1 a second per API key (bursts of 3); retry after the time in the "
               "retry-after header"}}


@pytest.fixture
def settings(settings):
    """One run executes at a time, so that the runs after it stay queued (active)."""
    return settings.model_copy(update={"max_concurrent_runs": 1})


@pytest.fixture
def slow_model(fake_openai):
    fake_openai.stall_next(seconds=60)  # the first run holds the only slot for the whole test
    return fake_openai


async def fill_quota(client: httpx.AsyncClient, base_url: str, count: int = 16) -> tuple[str, list[str]]:
    """A session with `count` active runs of the caller (one running, the others queued behind it)."""
    session = await create_session(client, openai_spec(base_url))
    url = f"/api/v1/sessions/{session['id']}/messages"
    runs = []
    for i in range(count):
        response = await client.post(url, json={"content": f"job {i}", "if_busy": "enqueue"})
        assert response.status_code == 202, response.text
        runs.append(response.json()["run"]["id"])
    return session["id"], runs


def assert_too_many_runs(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert response.json() == TOO_MANY_RUNS
    assert response.headers["retry-after"] == "5"


class TestActiveRunQuota:
    async def test_the_17th_active_run_is_429_and_writes_nothing(self, client, slow_model):
        spec = openai_spec(slow_model.base_url)
        await fill_quota(client, slow_model.base_url)
        other = await create_session(client, spec)
        url = f"/api/v1/sessions/{other['id']}/messages"
        assert_too_many_runs(await client.post(url, json={"content": "one more"}))
        assert (await client.get(url)).json()["data"] == []
        assert (await client.get(f"/api/v1/sessions/{other['id']}/runs")).json()["data"] == []

    async def test_an_inline_workflow_sent_over_the_quota_is_not_kept(self, client, slow_model):
        await fill_quota(client, slow_model.base_url)
        other = await create_session(client, openai_spec(slow_model.base_url))
        workflows = (await client.get("/api/v1/workflows", params={"limit": 100})).json()["data"]
        response = await client.post(f"/api/v1/sessions/{other['id']}/messages", json={
            "content": "one more", "workflow": openai_spec(slow_model.base_url, name="inline")})
        assert_too_many_runs(response)
        assert (await client.get("/api/v1/workflows", params={"limit": 100})).json()["data"] == workflows

    async def test_another_user_is_not_limited_by_it(self, client, slow_model):
        await fill_quota(client, slow_model.base_url)
        session = await create_session(client, openai_spec(slow_model.base_url), headers=BOB)
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi"},
                                     headers=BOB)
        assert response.status_code == 202, response.text

    async def test_a_run_that_ends_frees_a_place(self, client, app, slow_model):
        session_id, runs = await fill_quota(client, slow_model.base_url)
        url = f"/api/v1/sessions/{session_id}/messages"
        assert_too_many_runs(await client.post(url, json={"content": "one more", "if_busy": "enqueue"}))
        cancelled = await client.post(f"/api/v1/runs/{runs[-1]}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        response = await client.post(url, json={"content": "one more", "if_busy": "enqueue"})
        assert response.status_code == 202, response.text

    async def test_messages_sent_at_once_get_exactly_the_quota(self, client, slow_model):
        spec = openai_spec(slow_model.base_url)
        sessions = [await create_session(client, spec) for _ in range(20)]
        responses = await asyncio.gather(*(client.post(f"/api/v1/sessions/{s['id']}/messages",
                                                       json={"content": "at once"}) for s in sessions))
        assert sorted(r.status_code for r in responses) == [202] * 16 + [429] * 4
        for response in responses:
            if response.status_code == 429:
                assert response.json() == TOO_MANY_RUNS

    async def test_the_seed_api_answers_429_with_retry_after(self, client, slow_model):
        await fill_quota(client, slow_model.base_url)
        response = await client.post("/api/messages", json=message_body(user_id="local"))
        assert response.status_code == 429
        assert response.headers["retry-after"] == "5"
        assert response.json()["status"] is False and response.json()["data"]["code"] == "too_many_active_runs"


class TestUnlimitedActiveRuns:
    @pytest.fixture
    def settings(self, settings):
        return settings.model_copy(update={"max_active_runs_per_user": 0})

    async def test_zero_means_no_limit(self, client, slow_model):
        session_id, _ = await fill_quota(client, slow_model.base_url, count=20)
        listed = (await client.get(f"/api/v1/sessions/{session_id}/runs", params={"limit": 100})).json()["data"]
        assert len(listed) == 20


@pytest.fixture
async def limited_app(settings):
    """Three requests at once per key, then one a second."""
    application = create_app(settings.model_copy(update={"rate_limit_per_key": 1.0, "rate_limit_burst": 3}))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def limited_client(limited_app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=limited_app), base_url="http://127.0.0.1") as http:
        yield http


@pytest.fixture
async def limited_apikey_app(settings):
    application = create_app(settings.model_copy(update={
        "auth_mode": "apikey", "rate_limit_per_key": 1.0, "rate_limit_burst": 3}))
    async with application.router.lifespan_context(application):
        yield application


class TestRateLimit:
    async def test_a_burst_over_the_bucket_is_429_with_retry_after(self, limited_client):
        statuses = [(await limited_client.get("/api/v1/sessions")).status_code for _ in range(3)]
        assert statuses == [200] * 3
        response = await limited_client.get("/api/v1/sessions")
        assert response.status_code == 429
        assert response.json() == RATE_LIMITED
        assert response.headers["retry-after"] == "1" and response.headers["x-request-id"]

    async def test_writes_count_too_and_are_refused_before_any_work(self, limited_client, limited_app):
        for _ in range(3):
            await limited_client.get("/api/v1/workflows")
        response = await limited_client.post("/api/v1/sessions", json={"name": "refused"})
        assert response.status_code == 429 and response.json() == RATE_LIMITED
        count = select(func.count()).select_from(ChatSession)
        assert await limited_app.state.services.db.read_in_thread(
            lambda connection: connection.execute(count).scalar()) == 0

    async def test_the_seed_api_answers_in_its_envelope(self, limited_client):
        for _ in range(3):
            await limited_client.get("/api/sessions", params={"user_id": "local"})
        response = await limited_client.get("/api/sessions", params={"user_id": "local"})
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
        assert response.json() == {"status": False, "message": RATE_LIMITED["error"]["message"],
                                   "data": RATE_LIMITED["error"]}

    async def test_each_local_user_has_a_bucket(self, limited_client):
        for _ in range(4):
            await limited_client.get("/api/v1/sessions")
        assert (await limited_client.get("/api/v1/sessions", headers=BOB)).status_code == 200

    async def test_health_endpoints_are_exempt(self, limited_client):
        for _ in range(4):
            await limited_client.get("/api/v1/sessions")
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await limited_client.get(path)).status_code == 200, path

    async def test_each_api_key_has_a_bucket(self, limited_apikey_app):
        alice, bob = await make_key(limited_apikey_app, "alice"), await make_key(limited_apikey_app, "bob")
        transport = httpx.ASGITransport(app=limited_apikey_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            as_alice = {"Authorization": f"Bearer {alice}"}
            assert [(await client.get("/api/v1/sessions", headers=as_alice)).status_code
                    for _ in range(4)] == [200, 200, 200, 429]
            assert (await client.get("/api/v1/sessions", headers={"Authorization": f"Bearer {bob}"})).status_code == 200
            # Without a key, authentication answers (nobody's bucket is charged).
            assert (await client.get("/api/v1/sessions")).status_code == 401


class TestTokenBuckets:
    def test_a_bucket_refills_at_the_rate_up_to_the_burst(self):
        now = [0.0]
        buckets = TokenBuckets(2.0, 4, clock=lambda: now[0])
        assert [buckets.take(b"k") for _ in range(4)] == [0.0] * 4
        assert buckets.take(b"k") == pytest.approx(0.5)  # one token every half second
        now[0] = 0.75
        assert buckets.take(b"k") == 0.0  # 1.5 tokens back (the refused take cost none)
        assert buckets.take(b"k") == pytest.approx(0.25)
        now[0] = 100.0
        assert [buckets.take(b"k") for _ in range(5)][-1] > 0  # refilled to the burst, not beyond

    def test_a_zero_rate_never_limits(self):
        buckets = TokenBuckets(0.0, 1)
        assert all(buckets.take(b"k") == 0.0 for _ in range(1000))

    def test_keys_are_bounded_least_recently_used_first(self):
        buckets = TokenBuckets(1.0, 1, clock=lambda: 0.0)
        buckets.take(b"first")
        for i in range(MAX_BUCKETS):
            buckets.take(str(i).encode())
        assert buckets.take(b"first") == 0.0  # forgotten: a full bucket again
        assert buckets.take(str(MAX_BUCKETS - 1).encode()) == pytest.approx(1.0)
