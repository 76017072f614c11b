"""What is refused before any route sees it: foreign Hosts in local mode, bodies of other media types, and
bodies nested too deeply to decode (a 4xx in the error shape, never a 500)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from autobots.config import Settings
from autobots.web import create_app

from tests.support.api import create_session
from tests.support.specs import sequential_spec

DEEP_JSON = "[" * 2000 + "]" * 2000


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Any]:
    """Opens in-process clients of apps with `settings` changed as asked."""
    opened: list[Any] = []

    async def make(**changes: Any) -> httpx.AsyncClient:
        application = create_app(settings.model_copy(update=changes))
        lifespan = application.router.lifespan_context(application)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1")
        opened.append((lifespan, client))
        return client

    yield make
    for lifespan, client in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


class TestLocalModeHost:
    @pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8081", "127.attacker.example",
                                      "localhost.attacker.example", "127.0.0.1.nip.io", "127.0.0.1:80x", "[::1"])
    async def test_a_foreign_host_is_400(self, client, host: str):
        for path in ("/healthz", "/api/v1/workflows"):
            response = await client.get(path, headers={"host": host})
            assert response.status_code == 400 and response.headers["x-request-id"]
            assert response.json() == {"error": {
                "type": "invalid_request_error", "code": "host_not_allowed", "param": "Host",
                "message": f"Host {host!r} is not allowed: in auth mode 'local' this server answers only to "
                           "127.0.0.1, [::1], localhost (with any port)"}}

    async def test_a_foreign_host_cannot_create_a_workflow(self, client):
        response = await client.post("/api/v1/workflows", json=sequential_spec(), headers={"host": "evil.example"})
        assert response.status_code == 400
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8081", "localhost", "LOCALHOST:9", "[::1]",
                                      "[::1]:8081"])
    async def test_loopback_names_are_answered(self, client, host: str):
        assert (await client.get("/healthz", headers={"host": host})).status_code == 200

    async def test_the_configured_host_is_answered(self, make_client):
        client = await make_client(host="127.0.0.2")
        assert (await client.get("/healthz", headers={"host": "127.0.0.2:8081"})).status_code == 200
        assert (await client.get("/healthz", headers={"host": "127.0.0.3"})).status_code == 400

    async def test_apikey_mode_answers_any_host(self, make_client):
        client = await make_client(auth_mode="apikey")
        assert (await client.get("/healthz", headers={"host": "autobots.example.com"})).status_code == 200


def unsupported(sent: str, accepted: str = "application/json") -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": "unsupported_media_type", "param": "Content-Type",
                      "message": f"unsupported media type: the body has {sent}; send {accepted}"}}


class TestBodyMediaType:
    @pytest.mark.parametrize(("path", "content_type"), [
        ("/api/v1/workflows", "text/plain"), ("/api/v1/workflows", "application/x-www-form-urlencoded"),
        ("/api/v1/workflows/validate", "text/plain;charset=UTF-8"), ("/api/v1/workflows", "multipart/form-data")])
    async def test_a_spec_in_another_media_type_is_415(self, client, path: str, content_type: str):
        response = await client.post(path, content=json.dumps(sequential_spec()).encode(),
                                     headers={"content-type": content_type})
        assert response.status_code == 415 and response.headers["x-request-id"]
        sent = content_type.split(";")[0].lower()
        assert response.json() == unsupported(f"content-type {sent!r}", "application/json or application/yaml")
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    async def test_a_body_without_a_content_type_is_415(self, client):
        response = await client.post("/api/v1/workflows", content=json.dumps(sequential_spec()).encode())
        assert response.status_code == 415
        assert response.json() == unsupported("no content-type", "application/json or application/yaml")

    @pytest.mark.parametrize("content_type", ["application/yaml", "application/x-yaml", "text/yaml"])
    async def test_yaml_is_taken_by_the_spec_routes(self, client, content_type: str):
        response = await client.post("/api/v1/workflows", content=yaml.safe_dump(sequential_spec()).encode(),
                                     headers={"content-type": content_type})
        assert response.status_code == 201, response.text

    @pytest.mark.parametrize("content_type", ["text/plain", "application/yaml", "application/x-www-form-urlencoded"])
    async def test_other_json_routes_take_json_only(self, client, content_type: str):
        response = await client.post("/api/v1/sessions", content=b'{"name": "x"}',
                                     headers={"content-type": content_type})
        assert response.status_code == 415
        assert response.json() == unsupported(f"content-type {content_type!r}")

    async def test_structured_json_types_are_json(self, client):
        response = await client.post("/api/v1/sessions", content=b'{"name": "x"}',
                                     headers={"content-type": "application/vnd.autobots+json; charset=utf-8"})
        assert response.status_code == 201, response.text

    async def test_a_post_without_a_body_needs_no_content_type(self, client):
        session = await create_session(client, sequential_spec())
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages?wait=true",
                                     json={"content": "hello"})
        run_id = response.json()["run"]["id"]
        assert (await client.post(f"/api/v1/runs/{run_id}/cancel")).status_code == 200

    async def test_seed_routes_refuse_in_their_envelope(self, client):
        response = await client.post("/api/sessions", content=b'{"user_id": "local", "session": {}}',
                                     headers={"content-type": "text/plain"})
        assert response.status_code == 415
        assert response.json() == {"status": False, "message": "unsupported media type: the body has content-type "
                                   "'text/plain'; send application/json",
                                   "data": {"type": "invalid_request_error", "code": "unsupported_media_type",
                                            "param": "Content-Type"}}


def too_deep(kind: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "code": "invalid_body", "param": None,
                      "message": f"the body is not valid {kind}: it is nested too deeply"}}


class TestDeeplyNestedBodies:
    @pytest.mark.parametrize("path", ["/api/v1/workflows", "/api/v1/workflows/validate"])
    @pytest.mark.parametrize(("content_type", "kind"), [("application/json", "JSON"), ("application/yaml", "YAML")])
    async def test_a_spec_body_is_400(self, client, path: str, content_type: str, kind: str):
        response = await client.post(path, content=DEEP_JSON, headers={"content-type": content_type})
        assert (response.status_code, response.json()) == (400, too_deep(kind))

    async def test_replacing_a_spec_with_one_is_400(self, client):
        workflow = (await client.post("/api/v1/workflows", json=sequential_spec())).json()
        response = await client.put(f"/api/v1/workflows/{workflow['id']}", content=DEEP_JSON,
                                    headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (400, too_deep("JSON"))

    @pytest.mark.parametrize("body", [DEEP_JSON, '{"name": "x", "workflow": ' + '{"a": ' * 2000 + "1" + "}" * 2001])
    async def test_a_body_fastapi_decodes_is_400(self, client, body: str):
        response = await client.post("/api/v1/sessions", content=body, headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (400, too_deep("JSON"))

    async def test_a_seed_body_is_400_in_the_seed_envelope(self, client):
        response = await client.post("/api/messages", content=DEEP_JSON, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json() == {"status": False, "message": "the body is not valid JSON: it is nested too deeply",
                                   "data": {"type": "invalid_request_error", "code": "invalid_body", "param": None}}


NUL_REFUSED = {"error": {"type": "invalid_request_error", "code": "invalid_body", "param": None,
                         "message": "the body holds a NUL character (\\u0000), which no field accepts"}}


class TestNulCharacters:
    """PostgreSQL cannot store a NUL in text or JSON (it answered 500); no field needs one, so none gets in."""

    async def test_a_nul_in_a_json_spec_body_is_400(self, client):
        spec = {**sequential_spec(), "name": "a\u0000b"}
        response = await client.post("/api/v1/workflows", json=spec)
        assert (response.status_code, response.json()) == (400, NUL_REFUSED)
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    async def test_a_nul_in_a_message_is_400(self, client):
        session = await create_session(client, sequential_spec())
        response = await client.post(f"/api/v1/sessions/{session['id']}/messages", json={"content": "hi\u0000"})
        assert (response.status_code, response.json()) == (400, NUL_REFUSED)
        assert (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"] == []

    async def test_a_nul_split_across_body_chunks_is_found(self, client):
        body = json.dumps({**sequential_spec(), "name": "x" * 70_000 + "\u0000"}).encode()

        async def chunks() -> AsyncIterator[bytes]:
            cut = body.index(b"\\u0000") + 3  # the escape arrives in two chunks
            yield body[:cut]
            yield body[cut:]

        response = await client.post("/api/v1/workflows", content=chunks(),
                                     headers={"content-type": "application/json"})
        assert (response.status_code, response.json()) == (400, NUL_REFUSED)

    async def test_an_escaped_backslash_before_u0000_is_text_and_accepted(self, client):
        spec = {**sequential_spec(), "description": "print('\\u0000')"}
        response = await client.post("/api/v1/workflows", json=spec)
        assert response.status_code == 201, response.text
        assert response.json()["spec"]["description"] == "print('\\u0000')"

    async def test_a_nul_in_a_yaml_spec_is_400(self, client):
        spec = sequential_spec()
        del spec["name"]
        document = 'name: "a\\0b"\n' + yaml.safe_dump(spec)  # YAML's own escape for NUL
        response = await client.post("/api/v1/workflows", content=document.encode(),
                                     headers={"content-type": "application/yaml"})
        assert response.status_code == 400
        assert response.json()["error"]["message"] == "the body holds a NUL character, which no field accepts"
