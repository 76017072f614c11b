"""The read path's message cache: same pages as the database, never stale after a write."""

import itertools

import pytest
from autobots.db.repositories import PageQuery
from autobots.db.tables import Message, new_id
from autobots.sessions import service as session_service
from autobots.sessions.message_cache import message_cache
from autobots.sessions.repository import MessageRepository

from tests.support.api import create_session, send_and_wait


async def fill(app, session_id, user_id, count):
    async with app.state.services.db.session() as db:
        for i in range(count):
            db.add(Message(id=new_id("msg"), session_id=session_id, user_id=user_id, role="user", content=f"m{i}"))


@pytest.mark.skipif("postgresql" in __import__("os").environ.get("AUTOBOTS_DATABASE_URL", ""),
                    reason="the cache is only on for SQLite")
async def test_pages_from_the_cache_equal_the_database_pages(client, app):
    session = (await client.post("/api/v1/sessions", json={"name": "s"})).json()
    await fill(app, session["id"], session["user_id"], 7)
    db = app.state.services.db
    async with db.read_session() as read:
        ids = [m.id for m in (await MessageRepository(read).list_for_session(
            session["id"], PageQuery(limit=100, order="asc"))).rows]
        cursors = [None, ids[0], ids[3], ids[6], "msg_unknown"]
        for limit, order, after, before in itertools.product((1, 3, 10), ("asc", "desc"), cursors, cursors):
            page = PageQuery(limit=limit, order=order, after=after, before=before)
            expected = await MessageRepository(read).list_for_session(session["id"], page)
            got = await session_service.owned_messages_json(db, user_id=session["user_id"], session_id=session["id"],
                                                            page=page)
            assert [m.id for m in got.rows] == [m.id for m in expected.rows], page
            assert got.has_more == expected.has_more, page
    assert message_cache.get(session["id"]) is not None


async def test_a_new_message_is_seen_after_a_cached_read(client):
    session = await create_session(client)
    await send_and_wait(client, session["id"], "What is 1+1?")
    url = f"/api/v1/sessions/{session['id']}/messages"
    assert len((await client.get(url)).json()["data"]) == 2
    await send_and_wait(client, session["id"], "What is 2+2?")
    assert len((await client.get(url)).json()["data"]) == 4


async def test_deleted_and_cleared_messages_disappear_after_a_cached_read(client):
    session = await create_session(client)
    posted = await send_and_wait(client, session["id"], "What is 1+1?")
    url = f"/api/v1/sessions/{session['id']}/messages"
    assert len((await client.get(url)).json()["data"]) == 2
    await client.delete(f"/api/v1/messages/{posted['message']['id']}")
    assert [m["role"] for m in (await client.get(url)).json()["data"]] == ["assistant"]
    await client.delete(url)
    assert (await client.get(url)).json()["data"] == []


async def test_metadata_is_served_as_stored(client):
    session = await create_session(client)
    posted = await send_and_wait(client, session["id"], "What is 6*7?")
    listed = (await client.get(f"/api/v1/sessions/{session['id']}/messages")).json()["data"]
    assert listed[0] == posted["reply"] and listed[1] == posted["message"]


@pytest.mark.skipif("postgresql" in __import__("os").environ.get("AUTOBOTS_DATABASE_URL", ""),
                    reason="the cache is only on for SQLite")
class TestInvalidationFollowsTheCommit:
    """A bulk change the service registers invalidates once its unit of work commits: never before (a reader in
    between would cache the rows the commit removes), and not at all when it rolls back."""

    async def cached(self, client):
        session = await create_session(client)
        await send_and_wait(client, session["id"], "What is 1+1?")
        await client.get(f"/api/v1/sessions/{session['id']}/messages")
        assert message_cache.get(session["id"]) is not None
        return session, message_cache.version(session["id"])

    async def test_clear_invalidates_on_commit(self, client, app):
        session, version = await self.cached(client)
        async with app.state.services.db.session() as db:
            chat = await session_service.get_or_raise(db, user_id=session["user_id"], session_id=session["id"])
            assert await session_service.clear_messages(db, row=chat) == 2
            assert message_cache.version(session["id"]) == version
        assert message_cache.version(session["id"]) > version and message_cache.get(session["id"]) is None

    async def test_clear_rolled_back_keeps_the_entry(self, client, app):
        session, version = await self.cached(client)
        with pytest.raises(RuntimeError):
            async with app.state.services.db.session() as db:
                chat = await session_service.get_or_raise(db, user_id=session["user_id"], session_id=session["id"])
                await session_service.clear_messages(db, row=chat)
                raise RuntimeError("the request failed")
        assert message_cache.version(session["id"]) == version and message_cache.get(session["id"]) is not None

    async def test_a_deleted_session_is_forgotten(self, client):
        session, _ = await self.cached(client)
        assert (await client.delete(f"/api/v1/sessions/{session['id']}")).status_code == 204
        assert message_cache.get(session["id"]) is None and message_cache.owner(session["id"]) is None
        assert (await client.get(f"/api/v1/sessions/{session['id']}/messages")).status_code == 404
