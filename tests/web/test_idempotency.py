"""Idempotency-Key on creating POSTs."""

from tests.support.api import create_session
from tests.support.specs import sequential_spec


class TestIdempotencyKey:
    async def test_same_key_same_body_returns_the_first_response(self, client):
        headers = {"Idempotency-Key": "k-1"}
        first = await client.post("/api/v1/workflows", json=sequential_spec(), headers=headers)
        second = await client.post("/api/v1/workflows", json=sequential_spec(), headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.json() == first.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert len((await client.get("/api/v1/workflows")).json()["data"]) == 1

    async def test_same_key_different_body_is_409(self, client):
        headers = {"Idempotency-Key": "k-2"}
        await client.post("/api/v1/workflows", json=sequential_spec(), headers=headers)
        response = await client.post("/api/v1/workflows", json=sequential_spec(name="other"), headers=headers)
        assert response.status_code == 409
        assert response.json() == {"error": {
            "type": "conflict_error", "code": "idempotency_key_reused", "param": "Idempotency-Key",
            "message": "this Idempotency-Key was already used with a different request"}}

    async def test_keys_are_per_user(self, client):
        await client.post("/api/v1/workflows", json=sequential_spec(), headers={"Idempotency-Key": "k-3"})
        other = await client.post("/api/v1/workflows", json=sequential_spec(),
                                  headers={"Idempotency-Key": "k-3", "X-User-Id": "bob"})
        assert other.status_code == 201 and "idempotent-replayed" not in other.headers
        assert len((await client.get("/api/v1/workflows", headers={"X-User-Id": "bob"})).json()["data"]) == 1

    async def test_a_repeated_message_starts_one_run(self, client, app):
        session = await create_session(client)
        url = f"/api/v1/sessions/{session['id']}/messages"
        headers = {"Idempotency-Key": "msg-1"}
        first = await client.post(url, json={"content": "What is 1+2?"}, headers=headers)
        second = await client.post(url, json={"content": "What is 1+2?"}, headers=headers)
        assert first.status_code == second.status_code == 202
        assert second.json()["run"]["id"] == first.json()["run"]["id"]
        await app.state.services.runs.wait(first.json()["run"]["id"])
        runs = (await client.get(f"/api/v1/sessions/{session['id']}/runs")).json()["data"]
        assert len(runs) == 1

    async def test_errors_are_not_stored(self, client):
        headers = {"Idempotency-Key": "k-4"}
        bad = await client.post("/api/v1/workflows", json=sequential_spec(steps=[]), headers=headers)
        assert bad.status_code == 422
        again = await client.post("/api/v1/workflows", json=sequential_spec(steps=[]), headers=headers)
        assert again.status_code == 422 and "idempotent-replayed" not in again.headers

    async def test_overlong_key(self, client):
        response = await client.post("/api/v1/workflows", json=sequential_spec(),
                                     headers={"Idempotency-Key": "x" * 300})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_idempotency_key"
