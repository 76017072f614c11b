"""Pure ASGI middleware: request ids, body size limit, request metrics."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from autobots.web.errors import error_body
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is larger than the limit of {limit} bytes")


class RequestContextMiddleware:
    """Adds `x-request-id` to every response, refuses bodies over the limit with 413, counts requests."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, metrics: Any) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id_header = declared = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id_header = value
            elif name == b"content-length":
                declared = value
        request_id = (request_id_header or b"").decode("latin-1")[:100] or f"req_{uuid.uuid4().hex}"
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send_with_id)
            self._observe(scope, status_holder["status"], started)
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
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not status_holder["sent"]:
                await self._too_large(send_with_id)
        self._observe(scope, status_holder["status"], started)

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
        self.metrics.requests.labels(scope["method"], path, str(status)).inc()
        self.metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - started)
