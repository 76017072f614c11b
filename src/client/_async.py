"""`AsyncClient`: the asynchronous autobots client (httpx), the mirror of `Client`."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from autobots.client import _calls as calls
from autobots.client._base import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT_S,
    Call,
    ClientCore,
    RetryPolicy,
    SSEDecoder,
    StreamState,
)
from autobots.client._calls import Order
from autobots.client.models import GalleryItem, Message, Page, PostedMessage, Run, RunEvent, Session, Workflow

T = TypeVar("T")


async def _decoded(response: httpx.Response) -> AsyncIterator[RunEvent]:
    decoder = SSEDecoder()
    async for line in response.aiter_lines():
        event = decoder.feed(line)
        if event is not None:
            yield RunEvent.model_validate_json(event.data)


class AsyncClient:
    """An asynchronous client of the autobots HTTP API.

    Args:
        base_url: The server (default http://127.0.0.1:8081).
        api_key: Sent as `Authorization: Bearer <key>`.
        timeout_s: Timeout of a request (a waiting send gets longer to read).
        max_retries: Retries on 429/503 and on connection failures of repeatable requests.
        headers: Extra headers on every request.
        http_client: An httpx client to use (its owner closes it); by default the client makes its own.
        transport: The transport of the client's own httpx client.

    Example:
        >>> async with AsyncClient() as client:
        ...     session = await client.sessions.create(workflow=spec)
        ...     posted = await client.messages.send(session.id, "What is 6*7?", wait=True)
        ...     print(posted.reply.content)
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, api_key: str | None = None,
                 timeout_s: float = DEFAULT_TIMEOUT_S, max_retries: int = 3, headers: dict[str, str] | None = None,
                 http_client: httpx.AsyncClient | None = None, transport: httpx.AsyncBaseTransport | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self._core = ClientCore(base_url, api_key=api_key, timeout_s=timeout_s,
                                retry=retry or RetryPolicy(max_retries=max_retries), headers=headers)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport, timeout=self._core.timeout())
        self.workflows = Workflows(self)
        self.sessions = Sessions(self)
        self.messages = Messages(self)
        self.runs = Runs(self)
        self.gallery = Gallery(self)

    @property
    def base_url(self) -> str:
        return self._core.base_url

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        await self.close()

    async def _execute(self, call: Call[T]) -> T:
        """Send `call`, retrying as the policy allows with the same idempotency key; return its parsed answer."""
        kwargs = self._core.request_kwargs(call, self._core.idempotency_key(call))
        attempt = 0
        while True:
            try:
                response = await self._http.request(call.method, self._core.url(call.path), **kwargs)
            except httpx.TransportError as exc:
                delay = self._core.delay_after_error(call, exc, attempt)
                if delay is None:
                    raise self._core.connection_error(call, exc) from exc
            else:
                delay = self._core.delay_after_response(response, attempt)
                if delay is None:
                    return self._core.result(call, response)
            await asyncio.sleep(delay)
            attempt += 1

    async def _stream_events(self, run_id: str, starting_after: int) -> AsyncIterator[RunEvent]:
        state = StreamState(self._core.retry, starting_after)
        path = calls.run_events_path(run_id)
        url = self._core.url(path)
        while True:
            retry_after: str | None = None
            try:
                async with self._http.stream("GET", url, headers=self._core.stream_headers(state.last_seq),
                                       timeout=self._core.timeout()) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        if response.status_code not in (429, 503):
                            raise self._core.api_error(response, "GET", path)
                        retry_after = response.headers.get("retry-after")
                        reason = f"HTTP {response.status_code}"
                    else:
                        async for event in _decoded(response):
                            if state.accept(event):
                                yield event
                            if state.done:
                                return
                        reason = "the stream ended before `done`"
            except httpx.TransportError as exc:
                reason = repr(exc)
            await asyncio.sleep(state.reconnect_delay(reason, retry_after))


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


class Workflows(_Resource):
    async def create(self, spec: dict[str, Any] | str, *, idempotency_key: str | None = None) -> Workflow:
        """Store a workflow spec: a mapping is sent as JSON, a string as YAML (`application/yaml`)."""
        return await self._client._execute(calls.create_workflow(spec, idempotency_key))

    async def get(self, workflow_id: str) -> Workflow:
        """One workflow."""
        return await self._client._execute(calls.get_workflow(workflow_id))

    async def list(self, *, limit: int | None = None, order: Order | None = None, after: str | None = None,
             before: str | None = None) -> Page[Workflow]:
        """One page of the caller's workflows."""
        return await self._client._execute(calls.list_workflows(limit, order, after, before))


class Sessions(_Resource):
    async def create(self, *, workflow: dict[str, Any] | None = None, workflow_id: str | None = None,
               name: str | None = None, idempotency_key: str | None = None) -> Session:
        """Open a session on a stored workflow (`workflow_id`) or an inline spec (`workflow`, stored as new)."""
        return await self._client._execute(calls.create_session(workflow, workflow_id, name, idempotency_key))

    async def get(self, session_id: str) -> Session:
        """One session."""
        return await self._client._execute(calls.get_session(session_id))

    async def list(self, *, limit: int | None = None, order: Order | None = None, after: str | None = None,
             before: str | None = None) -> Page[Session]:
        """One page of the caller's sessions."""
        return await self._client._execute(calls.list_sessions(limit, order, after, before))


class Messages(_Resource):
    async def list(self, session_id: str, *, limit: int | None = None, order: Order | None = None,
             after: str | None = None, before: str | None = None) -> Page[Message]:
        """One page of a session's messages."""
        return await self._client._execute(calls.list_messages(session_id, limit, order, after, before))

    async def iterate(self, session_id: str, *, page_size: int = 100) -> AsyncIterator[Message]:
        """Every message of a session, oldest first, page by page."""
        after: str | None = None
        while True:
            page = await self.list(session_id, limit=page_size, order="asc", after=after)
            for message in page.data:
                yield message
            if not page.has_more or page.last_id is None:
                return
            after = page.last_id

    async def send(self, session_id: str, content: str, *, wait: bool = False, workflow_id: str | None = None,
             if_busy: Literal["reject", "enqueue"] | None = None,
             idempotency_key: str | None = None) -> PostedMessage:
        """Send a message and start a run: the user message and the run, plus the reply when `wait`."""
        return await self._client._execute(calls.send_message(session_id, content, wait=wait, workflow_id=workflow_id,
                                                        if_busy=if_busy, idempotency_key=idempotency_key))


class Runs(_Resource):
    async def list(self, session_id: str, *, limit: int | None = None, order: Order | None = None,
             after: str | None = None, before: str | None = None) -> Page[Run]:
        """One page of a session's runs."""
        return await self._client._execute(calls.list_runs(session_id, limit, order, after, before))

    async def get(self, run_id: str) -> Run:
        """One run."""
        return await self._client._execute(calls.get_run(run_id))

    async def cancel(self, run_id: str) -> Run:
        """Ask a run to stop (idempotent)."""
        return await self._client._execute(calls.cancel_run(run_id))

    async def events(self, run_id: str, *, starting_after: int = 0) -> builtins.list[RunEvent]:
        """The run's events so far, as a list."""
        return await self._client._execute(calls.list_run_events(run_id, starting_after))

    def stream(self, run_id: str, *, starting_after: int = 0) -> AsyncIterator[RunEvent]:
        """The run's events live, in order and each once, until `done`; a dropped connection is resumed with
        `Last-Event-ID`."""
        return self._client._stream_events(run_id, starting_after)


class Gallery(_Resource):
    async def list(self, *, tag: str | None = None, limit: int | None = None, order: Order | None = None,
             after: str | None = None, before: str | None = None) -> Page[GalleryItem]:
        """One page of published sessions, optionally with a tag."""
        return await self._client._execute(calls.list_gallery(tag, limit, order, after, before))

    async def get(self, item_id: str) -> GalleryItem:
        """One gallery item."""
        return await self._client._execute(calls.get_gallery_item(item_id))

    async def delete(self, item_id: str) -> None:
        """Take an item out of the gallery (its publisher only)."""
        await self._client._execute(calls.delete_gallery_item(item_id))

    async def publish(self, session_id: str, tags: Sequence[str] = (), *,
                idempotency_key: str | None = None) -> GalleryItem:
        """Publish a session's snapshot to the gallery."""
        return await self._client._execute(calls.publish(session_id, [*tags], idempotency_key))
