"""What the sync and async clients share: request descriptions, headers, retry decisions, errors, SSE decoding."""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import httpx
from autobots.client.errors import APIConnectionError, AutobotsAPIError, error_for
from autobots.client.models import RunEvent

T = TypeVar("T")

DEFAULT_BASE_URL = "http://127.0.0.1:8081"
DEFAULT_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 900.0  # ?wait=true answers only when the run has ended
RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
EVENT_STREAM = "text/event-stream"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request and how to read its answer.

    Args:
        method: The HTTP method.
        path: The path under the base URL, ids already quoted.
        parse: Turns the decoded JSON body (None for 204) into the result.
        json: The JSON body.
        content: A body sent as it is, instead of `json`.
        content_type: The `Content-Type` of `content`.
        params: Query parameters; None values are dropped.
        creates: A POST that creates something: it carries an `Idempotency-Key`, the same on every retry.
        idempotent: Safe to repeat after a connection failure (defaults from the method and `creates`).
        timeout_s: The read timeout when it differs from the client's.
        idempotency_key: The key to send instead of a generated one.
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    content: bytes | None = None
    content_type: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    creates: bool = False
    idempotent: bool | None = None
    timeout_s: float | None = None
    idempotency_key: str | None = None

    @property
    def repeatable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS or self.creates


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter; a server's `retry-after` wins (up to `max_retry_after_s`).

    Args:
        max_retries: Retries after the first attempt (0: never retry).
        initial_delay_s: The first backoff; it doubles per attempt.
        max_delay_s: The longest backoff.
        max_retry_after_s: The longest `retry-after` honoured.
    """

    max_retries: int = 3
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0
    max_retry_after_s: float = 60.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0-based)."""
        advised = parse_retry_after(retry_after)
        if advised is not None:
            return min(advised, self.max_retry_after_s)
        backoff = min(self.initial_delay_s * 2 ** attempt, self.max_delay_s)
        return backoff * (0.5 + random.random() / 2)  # jitter: clients retrying together spread out


def parse_retry_after(value: str | None) -> float | None:
    """`retry-after` as seconds: a number, or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def new_idempotency_key() -> str:
    return f"autobots-client-{uuid.uuid4()}"


def decode_json(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


class ClientCore:
    """Configuration and decisions shared by `Client` and `AsyncClient` (no I/O here).

    Args:
        base_url: The server, e.g. http://127.0.0.1:8081 (the `/api/v1` prefix is added per call).
        api_key: Sent as `Authorization: Bearer <key>`.
        timeout_s: The default timeout of a request.
        retry: When and how long to wait before retrying.
        headers: Extra headers on every request (e.g. `X-User-Id` for a local-mode server).
    """

    def __init__(self, base_url: str, *, api_key: str | None, timeout_s: float, retry: RetryPolicy,
                 headers: dict[str, str] | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retry = retry
        self.headers = {"Accept": "application/json", **(headers or {})}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def request_kwargs(self, call: Call[Any], idempotency_key: str | None) -> dict[str, Any]:
        """The keyword arguments of httpx's `request` for `call`."""
        headers = dict(self.headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if call.content_type:
            headers["Content-Type"] = call.content_type
        kwargs: dict[str, Any] = {"headers": headers, "params": {k: v for k, v in call.params.items() if v is not None},
                                  "timeout": self.timeout(call.timeout_s)}
        if call.content is not None:
            kwargs["content"] = call.content
        elif call.json is not None:
            kwargs["json"] = call.json
        return kwargs

    def timeout(self, read_s: float | None = None) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, read=read_s if read_s is not None else self.timeout_s)

    def stream_headers(self, last_seq: int) -> dict[str, str]:
        headers = {**self.headers, "Accept": EVENT_STREAM}
        if last_seq:
            headers["Last-Event-ID"] = str(last_seq)
        return headers

    def idempotency_key(self, call: Call[Any]) -> str | None:
        return (call.idempotency_key or new_idempotency_key()) if call.creates else None

    def delay_after_response(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying after `response`, or None when it is final."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.retry.max_retries:
            return None
        return self.retry.delay(attempt, response.headers.get("retry-after"))

    def delay_after_error(self, call: Call[Any], error: httpx.TransportError, attempt: int) -> float | None:
        """Seconds to wait before retrying after a connection failure, or None to give up."""
        # A refused connection never reached the server, so even a non-idempotent request may go again.
        unsent = isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
        if attempt >= self.retry.max_retries or not (unsent or call.repeatable):
            return None
        return self.retry.delay(attempt)

    def result(self, call: Call[T], response: httpx.Response) -> T:
        """The parsed answer, or the typed error for an error status."""
        if response.status_code >= 400:
            raise self.api_error(response, call.method, call.path)
        return call.parse(decode_json(response))

    def api_error(self, response: httpx.Response, method: str, path: str) -> AutobotsAPIError:
        """The typed error for an error `response` (its body already read) to `method path`."""
        return error_for(response.status_code, decode_json(response), request_id=response.headers.get("x-request-id"),
                         method=method, path=path)

    def connection_error(self, call: Call[Any], error: httpx.TransportError) -> APIConnectionError:
        return APIConnectionError(f"{call.method} {self.url(call.path)} failed: {error!r}")


@dataclass
class ServerSentEvent:
    id: str | None
    event: str
    data: str


class SSEDecoder:
    """Turns the lines of a `text/event-stream` body into events; comments (keep-alives) are skipped and an event
    cut off before its blank line is never dispatched."""

    def __init__(self) -> None:
        self._id: str | None = None
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> ServerSentEvent | None:
        """One line without its line break; returns the event a blank line completes."""
        line = line.rstrip("\r")
        if not line:
            if not self._data:
                self._event = "message"
                return None
            event = ServerSentEvent(self._id, self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
        return None


def run_events_of(lines: Iterable[str], decoder: SSEDecoder) -> Iterable[RunEvent]:
    for line in lines:
        event = decoder.feed(line)
        if event is not None:
            yield RunEvent.model_validate_json(event.data)


class StreamState:
    """Where a run's event stream stands: the last sequence number seen, whether `done` came, and how many
    reconnections in a row brought nothing new (reset by any new event).

    Args:
        retry: Bounds the reconnections without progress.
        starting_after: Only events after this sequence number are wanted.
    """

    def __init__(self, retry: RetryPolicy, starting_after: int = 0) -> None:
        self.retry = retry
        self.last_seq = starting_after
        self.done = False
        self.fruitless = 0
        self._progressed = False

    def accept(self, event: RunEvent) -> bool:
        """True when `event` is new (a replay after a reconnection is dropped)."""
        if event.seq <= self.last_seq:
            return False
        self.last_seq = event.seq
        self._progressed = True
        self.done = event.type == "done"
        return True

    def reconnect_delay(self, reason: str, retry_after: str | None = None) -> float:
        """Seconds to wait before reconnecting; raises `APIConnectionError` once retries without progress run out."""
        self.fruitless = 0 if self._progressed else self.fruitless + 1
        self._progressed = False
        if self.fruitless > self.retry.max_retries:
            raise APIConnectionError(f"the event stream broke off after event {self.last_seq}: {reason}")
        return self.retry.delay(max(self.fruitless - 1, 0), retry_after)
