"""Write admission: at most a few write requests do their work at once, so a burst of them never delays reads.

An event loop serves every ready task in turn. When 200 POSTs arrive together, each of their many steps
(authentication, reads, the submission, the response) waits behind the steps of all the others, and so does
every GET that arrives meanwhile: a read that needs a few loop turns waits for a few rounds of 200 handlers.
Holding write requests (POST, PUT, PATCH, DELETE) to `limit` in progress keeps those rounds short: writes
still go through as fast as the process can do them, parked ones cost nothing, and reads never queue here.

A write holds its place until its response starts. A handler that then waits for something long (a run to
end, or a stream of its events) gives its place back first with `leave(request)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LEAVE = "autobots.admission.leave"


class WriteAdmission:
    """Pure ASGI middleware; `limit` write requests in progress at once (0: no limit)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._places: asyncio.Semaphore | None = None  # made on first use, on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or self.limit <= 0:
            await self.app(scope, receive, send)
            return
        if self._places is None:
            self._places = asyncio.Semaphore(self.limit)
        places = self._places
        await places.acquire()
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                places.release()

        async def send_and_leave(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        scope.setdefault("state", {})[_LEAVE] = leave
        try:
            await self.app(scope, receive, send_and_leave)
        finally:
            leave()


def leave(request: Request) -> None:
    """Give the request's admission place back now (it is about to wait, not work). Harmless if it has none."""
    release: Callable[[], None] | None = request.scope.get("state", {}).get(_LEAVE)
    if release is not None:
        release()
