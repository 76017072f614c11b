"""/api/v1/workflows."""

from tests.support.specs import autonomous_spec, sequential_spec

OTHER = {"X-User-Id": "mallory"}


class TestCreateWorkflow:
    async def test_valid(self, client):
        response = await client.post("/api/v1/workflows", json=sequential_spec())
        assert response.status_code == 201
        body = response.json()
        assert body["id"].startswith("wf_") and body["object"] == "workflow"
        assert body["spec"]["steps"] == ["researcher", "writer"]
        assert response.headers["x-request-id"]

    async def test_yaml_body(self, client):
        document = "name: y\ntype: sequential\nmodels:\n  default: {provider: scripted, model: s}\n" \
                   "agents:\n  - name: writer\nsteps: [writer]\n"
        response = await client.post("/api/v1/workflows", content=document,
                                     headers={"content-type": "application/yaml"})
        assert response.status_code == 201, response.text
        assert response.json()["spec"]["steps"] == ["writer"]

    async def test_invalid_spec_lists_every_error(self, client):
        response = await client.post("/api/v1/workflows", json=autonomous_spec(sender="ghost", receiver="nobody"))
        assert response.status_code == 422
        assert response.json() == {"error": {
            "type": "invalid_request_error", "code": "invalid_workflow", "param": "sender",
            "message": "sender: unknown agent 'ghost'",
            "errors": [{"path": "sender", "message": "unknown agent 'ghost'"},
                       {"path": "receiver",
                        "message": "'nobody' is neither an agent nor the groupchat of this workflow"}],
        }}
        assert (await client.get("/api/v1/workflows")).json()["data"] == []

    async def test_malformed_json(self, client):
        response = await client.post("/api/v1/workflows", content=b"{not json",
                                     headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_body"

    async def test_empty_body(self, client):
        response = await client.post("/api/v1/workflows", content=b"")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "empty_body"

    async def test_inline_api_key_is_never_returned_or_stored(self, client):
        model = {"provider": "scripted", "model": "s", "api_key": "sk-very-secret-1"}
        spec = sequential_spec(models={"default": model})
        created = await client.post("/api/v1/workflows", json=spec)
        assert created.status_code == 201
        fetched = await client.get(f"/api/v1/workflows/{created.json()['id']}")
        listed = await client.get("/api/v1/workflows")
        for response in (created, fetched, listed):
            assert "sk-very-secret-1" not in response.text

    async def test_body_over_the_limit(self, client):
        spec = sequential_spec(description="x" * 300_000)
        response = await client.post("/api/v1/workflows", json=spec)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"


class TestValidateWorkflow:
    async def test_valid(self, client):
        response = await client.post("/api/v1/workflows/validate", json=sequential_spec())
        assert response.json() == {"valid": True, "errors": []}

    async def test_invalid_is_200_with_errors(self, client):
        response = await client.post("/api/v1/workflows/validate", json=sequential_spec(steps=[]))
        assert response.status_code == 200
        assert response.json() == {"valid": False, "errors": [
            {"path": "steps", "message": "a sequential workflow needs at least one step"}]}


class TestReadUpdateDelete:
    async def test_get_put_delete(self, client):
        created = (await client.post("/api/v1/workflows", json=sequential_spec())).json()
        replaced = await client.put(f"/api/v1/workflows/{created['id']}", json=sequential_spec(name="renamed"))
        assert replaced.status_code == 200 and replaced.json()["name"] == "renamed"
        assert (await client.delete(f"/api/v1/workflows/{created['id']}")).status_code == 204
        missing = await client.get(f"/api/v1/workflows/{created['id']}")
        assert missing.status_code == 404
        assert missing.json() == {"error": {"type": "not_found_error", "code": "workflow_not_found",
                                            "param": "workflow_id",
                                            "message": f"no workflow with id '{created['id']}'"}}

    async def test_other_users_workflow_is_404(self, client):
        created = (await client.post("/api/v1/workflows", json=sequential_spec())).json()
        for method in ("GET", "DELETE"):
            response = await client.request(method, f"/api/v1/workflows/{created['id']}", headers=OTHER)
            assert response.status_code == 404
        response = await client.put(f"/api/v1/workflows/{created['id']}", json=sequential_spec(), headers=OTHER)
        assert response.status_code == 404

    async def test_pagination(self, client):
        ids = [(await client.post("/api/v1/workflows", json=sequential_spec(name=f"w{i}"))).json()["id"]
               for i in range(5)]
        first = (await client.get("/api/v1/workflows?limit=2&order=asc")).json()
        assert [w["id"] for w in first["data"]] == ids[:2] and first["has_more"] is True
        assert first["first_id"] == ids[0] and first["last_id"] == ids[1]
        second = (await client.get(f"/api/v1/workflows?limit=2&order=asc&after={first['last_id']}")).json()
        assert [w["id"] for w in second["data"]] == ids[2:4]
        newest = (await client.get("/api/v1/workflows?limit=2")).json()
        assert [w["id"] for w in newest["data"]] == [ids[4], ids[3]]
        before = (await client.get(f"/api/v1/workflows?limit=2&order=asc&before={ids[4]}")).json()
        assert [w["id"] for w in before["data"]] == ids[2:4]

    async def test_bad_limit(self, client):
        response = await client.get("/api/v1/workflows?limit=500")
        assert response.status_code == 422
        assert response.json()["error"]["param"] == "limit"
