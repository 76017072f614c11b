"""Write admission: a few write requests work at once; reads are never held; a waiting handler leaves."""

import asyncio

import httpx
from autobots.web import admission
from autobots.web.admission import WriteAdmission
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

NAMES = ("a", "b", "leaver")


def gated_app(limit: int) -> tuple[Starlette, dict[str, asyncio.Event], dict[str, asyncio.Event]]:
    """Requests to /slow (`name`) block until `release[name]` is set; /leave gives its place back, then blocks.
    Each sets `working[name]` once its handler runs."""
    release = {name: asyncio.Event() for name in NAMES}
    working = {name: asyncio.Event() for name in NAMES}

    async def slow(request: Request) -> PlainTextResponse:
        name = request.query_params["name"]
        working[name].set()
        await release[name].wait()
        return PlainTextResponse(name)

    async def leaves(request: Request) -> PlainTextResponse:
        admission.leave(request)
        working["leaver"].set()
        await release["leaver"].wait()
        return PlainTextResponse("left")

    async def read(_: Request) -> PlainTextResponse:
        return PlainTextResponse("read")

    app = Starlette(routes=[Route("/slow", slow, methods=["POST", "GET"]), Route("/leave", leaves, methods=["POST"]),
                            Route("/read", read)])
    app.add_middleware(WriteAdmission, limit=limit)
    return app, release, working


async def started(event: asyncio.Event) -> None:
    async with asyncio.timeout(5):
        await event.wait()


async def test_a_write_waits_for_a_place_and_gets_it_when_one_is_freed():
    app, release, working = gated_app(limit=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        first = asyncio.create_task(client.post("/slow", params={"name": "a"}))
        await started(working["a"])
        second = asyncio.create_task(client.post("/slow", params={"name": "b"}))
        await asyncio.sleep(0.1)
        assert not working["b"].is_set()  # the second write is held
        release["a"].set()
        assert (await first).text == "a"
        await started(working["b"])
        release["b"].set()
        assert (await second).text == "b"


async def test_reads_are_never_held_by_writes():
    app, release, working = gated_app(limit=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        write = asyncio.create_task(client.post("/slow", params={"name": "a"}))
        await started(working["a"])
        assert (await client.get("/read")).text == "read"
        reading = asyncio.create_task(client.get("/slow", params={"name": "b"}))
        await started(working["b"])  # a GET of a slow route is not held either
        release["a"].set()
        release["b"].set()
        await asyncio.gather(write, reading)


async def test_a_handler_that_leaves_frees_its_place_before_answering():
    app, release, working = gated_app(limit=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        leaver = asyncio.create_task(client.post("/leave"))
        await started(working["leaver"])
        write = asyncio.create_task(client.post("/slow", params={"name": "a"}))
        await started(working["a"])  # admitted while the leaver still waits
        release["a"].set()
        release["leaver"].set()
        assert [r.text for r in await asyncio.gather(leaver, write)] == ["left", "a"]


async def test_zero_means_no_limit():
    app, release, working = gated_app(limit=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        writes = [asyncio.create_task(client.post("/slow", params={"name": name})) for name in ("a", "b")]
        await asyncio.gather(started(working["a"]), started(working["b"]))
        for event in release.values():
            event.set()
        await asyncio.gather(*writes)


async def test_a_failing_write_gives_its_place_back():
    async def boom(_: Request) -> PlainTextResponse:
        raise RuntimeError("boom")

    app = Starlette(routes=[Route("/boom", boom, methods=["POST"])])
    app.add_middleware(WriteAdmission, limit=1)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):  # each would hang behind the previous one if its place were not released
            async with asyncio.timeout(5):
                assert (await client.post("/boom")).status_code == 500
