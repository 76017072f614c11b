"""Pure ASGI middleware: request ids, body size limit, request metrics."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

from autobots.web.errors import error_body
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_REQUEST_ID_LENGTH = 100


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes")


def new_request_id() -> bytes:
    return b"req_" + os.urandom(16).hex().encode()


class RequestContextMiddleware:
    """Adds `x-request-id` to every response, refuses bodies over the limit with 413, counts requests.

    `wrap_posts` wraps the app for POST requests only (the idempotency layer): other methods go straight
    to the app, so a GET does not pass through what it never needs.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Any,
                 wrap_posts: Callable[[ASGIApp], ASGIApp] | None = None) -> None:
        self.app = app
        self.post_app = wrap_posts(app) if wrap_posts is not None else app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value[:MAX_REQUEST_ID_LENGTH]
            elif name == b"content-length":
                declared = value
        id_header = (b"x-request-id", request_id or new_request_id())
        status = 500
        sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = True
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send_with_id)
            self._observe(scope, status, started)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        try:
            await (self.post_app if scope["method"] == "POST" else self.app)(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not sent:
                await self._too_large(send_with_id)
        self._observe(scope, status, started)

    async def _too_large(self, send: Send) -> None:
        body = json.dumps(error_body("invalid_request_error",
                                     f"the body is larger than the limit of {self.max_body_bytes} bytes",
                                     code="body_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.observe_request(scope["method"], path, status, time.perf_counter() - started)
