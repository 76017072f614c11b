"""`Idempotency-Key` on creating POSTs: the same key and body within 24 h get the first response again;
the same key with a different body is 409. Keys are scoped to the caller's credentials."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from autobots.db.repositories import IdempotencyRepository
from autobots.db.tables import IdempotencyRecord, now
from autobots.web.errors import error_body
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LIFETIME_S = 24 * 3600
MAX_KEY_LENGTH = 255


def _scope_of(headers: dict[bytes, bytes]) -> str:
    """Who is asking, without storing any credential: a hash of the key, or the local user name."""
    credential = headers.get(b"authorization") or b"local:" + headers.get(b"x-user-id", b"local")
    return hashlib.sha256(credential).hexdigest()[:40]


class IdempotencyMiddleware:
    """Replays stored responses for repeated `Idempotency-Key`s on POST /api/v1/... requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        key_bytes = headers.get(b"idempotency-key")
        if key_bytes is None:
            await self.app(scope, receive, send)
            return
        key = key_bytes.decode("latin-1").strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_json(send, 400, error_body("invalid_request_error",
                                                   f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters",
                                                   param="Idempotency-Key", code="invalid_idempotency_key"))
            return
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(b"\n".join([
            scope["path"].encode(), scope.get("query_string", b""), headers.get(b"accept", b""), body])).hexdigest()
        owner = _scope_of(headers)
        db = scope["app"].state.services.db
        lock = self._locks.setdefault((owner, key), asyncio.Lock())
        async with lock:
            async with db.read_session() as session:
                record = await IdempotencyRepository(session).find(owner, key)
            if record is not None:
                await self._replay(record, fingerprint, send)
                return
            captured = await self._call(scope, body, send)
            if captured is not None:
                await self._store(db, owner, key, fingerprint, captured)
        if not lock.locked():
            self._locks.pop((owner, key), None)

    async def _call(self, scope: Scope, body: bytes, send: Send) -> dict[str, Any] | None:
        """Run the request; return what to store: successful JSON answers only (an error may not recur)."""
        state: dict[str, Any] = {"status": 500, "headers": [], "chunks": [], "streaming": False}
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                state["headers"] = message.get("headers", [])
                content_type = dict(state["headers"]).get(b"content-type", b"")
                state["streaming"] = content_type.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and not state["streaming"]:
                state["chunks"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, replay_receive, capture)
        if state["streaming"] or not 200 <= state["status"] < 300:
            return None
        content = b"".join(state["chunks"])
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            return None
        return {"status": state["status"], "body": parsed}

    async def _store(self, db: Any, owner: str, key: str, fingerprint: str, captured: dict[str, Any]) -> None:
        record = IdempotencyRecord(user_id=owner, key=key, request_hash=fingerprint, status_code=captured["status"],
                                   response={"body": captured["body"]}, expires_at=now() + LIFETIME_S)
        try:
            async with db.session() as session:
                await IdempotencyRepository(session).purge_expired()
                await IdempotencyRepository(session).add(record)
        except IntegrityError:
            pass

    async def _replay(self, record: IdempotencyRecord, fingerprint: str, send: Send) -> None:
        if record.request_hash != fingerprint:
            await _send_json(send, 409, error_body(
                "conflict_error", "this Idempotency-Key was already used with a different request",
                param="Idempotency-Key", code="idempotency_key_reused"))
            return
        await _send_json(send, record.status_code, record.response.get("body"),
                         extra_headers=[(b"idempotent-replayed", b"true")])


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send_json(send: Send, status: int, payload: Any,
                     extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    content = b"" if payload is None else json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
               *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
