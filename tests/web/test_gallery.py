"""/api/v1/sessions/{id}/publish and /api/v1/gallery."""

from tests.support.api import create_session, send_and_wait
from tests.support.specs import autonomous_spec

BOB = {"X-User-Id": "bob"}


async def published(client, tags=("math",)):
    spec = autonomous_spec()
    spec["models"]["default"]["api_key"] = "sk-gallery-secret-9"
    session = await create_session(client, spec)
    await send_and_wait(client, session["id"], "What is 2+2?")
    response = await client.post(f"/api/v1/sessions/{session['id']}/publish", json={"tags": list(tags)})
    assert response.status_code == 201, response.text
    return session, response


class TestPublish:
    async def test_snapshot_with_messages_and_tags(self, client):
        session, response = await published(client, tags=("math", "demo"))
        item = response.json()
        assert item["id"].startswith("gal_") and item["object"] == "gallery_item"
        assert item["session"]["id"] == session["id"] and item["tags"] == ["demo", "math"]
        assert [m["role"] for m in item["messages"]] == ["user", "assistant"]
        assert item["session"]["workflow"]["agents"][0]["name"] == "coder"
        assert item["published_by"] == session["user_id"]

    async def test_secrets_are_redacted(self, client):
        _, response = await published(client)
        assert "sk-gallery-secret-9" not in response.text
        assert "api_key" not in response.json()["session"]["workflow"]["models"]["default"]

    async def test_other_users_session_cannot_be_published(self, client):
        session = await create_session(client)
        response = await client.post(f"/api/v1/sessions/{session['id']}/publish", json={}, headers=BOB)
        assert response.status_code == 404


class TestBrowse:
    async def test_any_user_lists_and_reads(self, client):
        _, response = await published(client, tags=("math",))
        await published(client, tags=("poetry",))
        item = response.json()
        listed = (await client.get("/api/v1/gallery?tag=math", headers=BOB)).json()
        assert [i["id"] for i in listed["data"]] == [item["id"]]
        assert len((await client.get("/api/v1/gallery", headers=BOB)).json()["data"]) == 2
        assert (await client.get(f"/api/v1/gallery/{item['id']}", headers=BOB)).json() == item

    async def test_unknown_item(self, client):
        response = await client.get("/api/v1/gallery/gal_missing")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "gallery_item_not_found"


class TestDelete:
    async def test_only_the_publisher(self, client):
        _, response = await published(client)
        item_id = response.json()["id"]
        assert (await client.delete(f"/api/v1/gallery/{item_id}", headers=BOB)).status_code == 404
        assert (await client.get(f"/api/v1/gallery/{item_id}")).status_code == 200
        assert (await client.delete(f"/api/v1/gallery/{item_id}")).status_code == 204
        assert (await client.get(f"/api/v1/gallery/{item_id}")).status_code == 404
