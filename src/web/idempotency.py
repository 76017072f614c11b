"""`Idempotency-Key` on creating POSTs: the same key and body within 24 h get the first response again;
the same key with a different body is 409. Keys are scoped to the caller's credentials.

Across API replicas the database decides: a request first claims its key with a pending record (the unique
(user, key) constraint lets one claim win), executes, stores the response, and only then sends it; a repeat
that finds the key pending waits for the response to be stored (or, after `PENDING_WAIT_S`, answers 409
`idempotency_key_in_flight`). A failed request releases its claim (an error may not recur), and a claim
whose server died lapses after `PENDING_LIFETIME_S`.
"""

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
PENDING = 0  # the status_code of a claimed key whose response is not stored yet
PENDING_LIFETIME_S = 120
PENDING_WAIT_S = 30.0
PENDING_POLL_S = 0.05


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
            record = await self._claim_or_find(db, owner, key, fingerprint)
            if record is not None:
                await self._replay(record, fingerprint, send)
            else:
                await self._execute(db, scope, body, send, owner, key)
        if not lock.locked():
            self._locks.pop((owner, key), None)

    async def _claim_or_find(self, db: Any, owner: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """None when this request claimed the key (it executes); else the stored record, once not pending."""
        deadline = asyncio.get_running_loop().time() + PENDING_WAIT_S
        while True:
            try:
                async with db.session() as session:
                    repository = IdempotencyRepository(session)
                    await repository.purge_expired()
                    await repository.add(IdempotencyRecord(
                        user_id=owner, key=key, request_hash=fingerprint, status_code=PENDING, response={},
                        expires_at=now() + PENDING_LIFETIME_S))
                return None
            except IntegrityError:
                pass
            async with db.read_session() as session:
                record = await IdempotencyRepository(session).find(owner, key)
            if record is not None and (record.status_code != PENDING or record.request_hash != fingerprint):
                return record
            if asyncio.get_running_loop().time() > deadline:
                return record
            await asyncio.sleep(PENDING_POLL_S)

    async def _execute(self, db: Any, scope: Scope, body: bytes, send: Send, owner: str, key: str) -> None:
        """Run the request holding its response back; store a successful JSON one, release the claim otherwise,
        then send it."""
        held: list[Message] = []
        try:
            captured = await self._call(scope, body, send, held)
        except BaseException:
            await self._release(db, owner, key)
            raise
        if captured is not None:
            await self._complete(db, owner, key, captured)
        else:
            await self._release(db, owner, key)
        for message in held:
            await send(message)

    async def _call(self, scope: Scope, body: bytes, send: Send, held: list[Message]) -> dict[str, Any] | None:
        """Run the request; return what to store: successful JSON answers only (an error may not recur). The
        response is appended to `held` for the caller to send after storing it; a stream goes out at once."""
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
            if state["streaming"]:
                for earlier in held:
                    await send(earlier)
                held.clear()
                await send(message)
            else:
                held.append(message)

        await self.app(scope, replay_receive, capture)
        if state["streaming"] or not 200 <= state["status"] < 300:
            return None
        content = b"".join(state["chunks"])
        try:
            parsed = json.loads(content) if content else None
        except ValueError:
            return None
        return {"status": state["status"], "body": parsed}

    async def _complete(self, db: Any, owner: str, key: str, captured: dict[str, Any]) -> None:
        async with db.session() as session:
            await IdempotencyRepository(session).complete(owner, key, status_code=captured["status"],
                                                          response={"body": captured["body"]},
                                                          expires_at=now() + LIFETIME_S)

    async def _release(self, db: Any, owner: str, key: str) -> None:
        async with db.session() as session:
            await IdempotencyRepository(session).release(owner, key)

    async def _replay(self, record: IdempotencyRecord | None, fingerprint: str, send: Send) -> None:
        if record is None or (record.status_code == PENDING and record.request_hash == fingerprint):
            await _send_json(send, 409, error_body(
                "conflict_error", "a request with this Idempotency-Key is still being processed; retry shortly",
                param="Idempotency-Key", code="idempotency_key_in_flight"))
            return
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
