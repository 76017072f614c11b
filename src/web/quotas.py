"""Per-user quotas kept by this API process: a request rate per key (token bucket) and open event streams.

Both are counted in this process's memory: with several API processes behind one address, each allows the
configured rate and streams, so a user gets at most that many times the limits. The third quota, active runs
per user, is counted in the database on submission (`RunManager.submit`) and holds across processes.

- `RateLimitMiddleware` (pure ASGI, before any route work, body reading or write admission): every request
  takes a token from its key's bucket, which holds `rate_limit_burst` tokens and refills at
  `rate_limit_per_key` a second; an empty bucket answers 429 with `retry-after`. The key is the bearer API
  key; in local mode a request without one is counted for its `X-User-Id` user (or `local`). An `apikey`-mode
  request without a key is left to authentication (401). Health endpoints are exempt.
- `StreamSlot` (a dependency of the routes that answer with an event stream): a user holds one slot per open
  stream, at most `max_streams_per_user`; one more is 429, before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from autobots.compat import envelope
from autobots.errors import QuotaExceeded
from autobots.web.auth import LOCAL_USER, CurrentUser
from autobots.web.errors import error_body
from autobots.web.schemas import ErrorBody
from autobots.web.sse import wants_event_stream
from fastapi import Depends, Header, Request
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_BUCKETS = 10_000
# When a user at the stream limit may retry: streams end when their run does, or when the client leaves.
STREAMS_RETRY_AFTER_S = 5
# For the OpenAPI document of routes with a quota of their own (every route has the rate limit).
OVER_QUOTA: dict[int | str, dict[str, Any]] = {429: {
    "model": ErrorBody, "description": "Over a per-user quota (active runs, open event streams, request rate)",
    "headers": {"retry-after": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}}}


class TokenBuckets:
    """One token bucket per key: `burst` tokens, refilled at `rate` a second.

    At most `MAX_BUCKETS` keys are remembered, the least recently used forgotten first (a forgotten key starts
    again with a full bucket, which it would have soon anyway unless that many keys are busy at once).

    Args:
        rate: Tokens added per second (0: no limit).
        burst: The bucket's size.
        clock: Seconds, monotonic.
    """

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._buckets: OrderedDict[bytes, tuple[float, float]] = OrderedDict()  # key → (tokens, updated at)

    def take(self, key: bytes) -> float:
        """Take a token for `key`: 0.0 if there was one, else the seconds until there is."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        tokens, updated = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return wait


class StreamCounter:
    """Open event streams per user, at most `limit` each (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """One stream of `user_id` for the duration of the block.

        Raises:
            QuotaExceeded: The user has `limit` streams open already.
        """
        held = self._open.get(user_id, 0)
        if self.limit and held >= self.limit:
            raise QuotaExceeded(f"you have {held} event streams open, the most allowed per user; close one first",
                                retry_after=STREAMS_RETRY_AFTER_S, code="too_many_streams")
        self._open[user_id] = held + 1
        try:
            yield
        finally:
            remaining = self._open[user_id] - 1
            if remaining:
                self._open[user_id] = remaining
            else:
                del self._open[user_id]


def _rate_key(scope: Scope, local_mode: bool) -> bytes | None:
    """Whose bucket a request draws from: a digest of its API key, or in local mode its user's name."""
    user = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return b"key:" + hashlib.blake2b(value.strip(), digest_size=16).digest()
        if name == b"x-user-id":
            user = value.decode("latin-1").strip()
    if not local_mode:
        return None
    return b"user:" + (user or LOCAL_USER).encode()


class RateLimitMiddleware:
    """Pure ASGI middleware: at most `rate` requests a second per key, in bursts of up to `burst`."""

    def __init__(self, app: ASGIApp, *, rate: float, burst: int, local_mode: bool) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)
        self.local_mode = local_mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.buckets.rate <= 0 or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        key = _rate_key(scope, self.local_mode)
        wait = self.buckets.take(key) if key is not None else 0.0
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        message = (f"too many requests: at most {self.buckets.rate:g} a second per API key (bursts of "
                   f"{self.buckets.burst}); retry after the time in the retry-after header")
        payload = error_body("rate_limit_error", message, code="rate_limit_exceeded")
        if envelope.is_seed_path(scope["path"]):
            payload = envelope.error_envelope(message, payload["error"])
        body = json.dumps(payload).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(max(1, math.ceil(wait))).encode())]})
        await send({"type": "http.response.body", "body": body})


async def hold_stream_slot(request: Request, user: CurrentUser,
                           accept: Annotated[str | None, Header(include_in_schema=False)] = None
                           ) -> AsyncIterator[None]:
    """For a request answered with an event stream, one of the user's stream slots until the stream ends."""
    if not wants_event_stream(accept):
        yield
        return
    streams: StreamCounter = request.app.state.streams
    with streams.hold(user.id):
        yield


# Request-scoped: the slot is given back once the response (the whole stream) has been sent, or has failed.
StreamSlot = Annotated[None, Depends(hold_stream_slot)]
