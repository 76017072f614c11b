"""Auth mode `apikey` on a real server: keys made with the CLI, errors in the contract's shape."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server_api import API, create_session
from tests.support.specs import autonomous_spec

pytestmark = pytest.mark.e2e


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class TestApiKeyMode:
    def test_no_key(self, apikey_server):
        for headers in ({}, {"X-User-Id": "alice"}):
            response = httpx.get(f"{apikey_server.base_url}{API}/sessions", headers=headers)
            assert response.status_code == 401
            assert response.headers["x-request-id"]
            assert response.json() == {"error": {
                "type": "authentication_error",
                "message": "an API key is required: send 'Authorization: Bearer <api key>'",
                "param": None, "code": "missing_api_key"}}

    def test_wrong_key(self, apikey_server, api_keys):
        response = httpx.get(f"{apikey_server.base_url}{API}/sessions", headers=bearer("not-" + api_keys["alice"]))
        assert response.status_code == 401
        assert response.json() == {"error": {"type": "authentication_error", "message": "invalid API key",
                                             "param": None, "code": "invalid_api_key"}}

    def test_valid_key(self, apikey_server, api_keys):
        with httpx.Client(base_url=apikey_server.base_url, headers=bearer(api_keys["alice"]), timeout=60) as alice:
            session = create_session(alice, autonomous_spec())
            posted = alice.post(f"{API}/sessions/{session['id']}/messages?wait=true", json={"content": "What is 6*7?"})
            assert posted.status_code == 200, posted.text
            assert posted.json()["run"]["status"] == "completed"
            listed = alice.get(f"{API}/sessions").json()
            assert session["id"] in [s["id"] for s in listed["data"]]

    def test_other_users_session(self, apikey_server, api_keys):
        with httpx.Client(base_url=apikey_server.base_url, headers=bearer(api_keys["alice"]), timeout=60) as alice:
            session = create_session(alice, autonomous_spec())
            run = alice.post(f"{API}/sessions/{session['id']}/messages?wait=true",
                             json={"content": "What is 6*7?"}).json()["run"]
        with httpx.Client(base_url=apikey_server.base_url, headers=bearer(api_keys["bob"]), timeout=60) as bob:
            response = bob.get(f"{API}/sessions/{session['id']}")
            assert response.status_code == 404
            assert response.json() == {"error": {"type": "not_found_error",
                                                 "message": f"no session with id '{session['id']}'",
                                                 "param": "session_id", "code": "session_not_found"}}
            for url in (f"{API}/sessions/{session['id']}/messages", f"{API}/runs/{run['id']}",
                        f"{API}/runs/{run['id']}/events"):
                assert bob.get(url).status_code == 404, url
            posted = bob.post(f"{API}/sessions/{session['id']}/messages", json={"content": "hi"})
            assert posted.status_code == 404
            assert session["id"] not in [s["id"] for s in bob.get(f"{API}/sessions").json()["data"]]
