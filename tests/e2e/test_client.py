"""`autobots.client` against real servers over real HTTP: typed results, streams that resume, typed errors,
retries that honour retry-after with one idempotency key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import yaml
from autobots.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    GalleryItem,
    InvalidRequestError,
    NotFoundError,
    PostedMessage,
    RateLimitError,
    RetryPolicy,
    RunEvent,
    Session,
)

from tests.support.servers import ServerProcess
from tests.support.specs import autonomous_spec

pytestmark = pytest.mark.e2e


@pytest.fixture
def client(base_url: str) -> Iterator[Client]:
    with Client(base_url) as http:
        yield http


def assert_whole_run(events: list[RunEvent]) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type for e in events[:2]] == ["run.queued", "run.started"]
    assert [e.type for e in events[-2:]] == ["run.completed", "done"]


class TestSessionsAndMessages:
    def test_send_and_wait_returns_the_typed_reply(self, client):
        session = client.sessions.create(workflow=autonomous_spec(), name="client-wait")
        assert isinstance(session, Session) and session.id.startswith("ses_") and session.name == "client-wait"
        posted = client.messages.send(session.id, "What is 12*(3+4)?", wait=True)
        assert isinstance(posted, PostedMessage)
        assert posted.message.role == "user" and posted.message.content == "What is 12*(3+4)?"
        assert posted.run.status == "completed" and posted.run.usage.total_tokens > 0 and posted.run.cost > 0
        assert posted.reply is not None and posted.reply.role == "assistant" and "84" in posted.reply.content
        assert [m.id for m in client.messages.iterate(session.id)] == [posted.message.id, posted.reply.id]
        assert session.id in [s.id for s in client.sessions.list(limit=100).data]

    def test_a_stored_workflow(self, client):
        workflow = client.workflows.create(autonomous_spec(name="stored-coder"))
        assert workflow.id.startswith("wf_") and workflow.name == "stored-coder" and workflow.type == "autonomous"
        session = client.sessions.create(workflow_id=workflow.id)
        assert session.workflow_id == workflow.id

    def test_a_workflow_sent_as_yaml(self, client):
        workflow = client.workflows.create(yaml.safe_dump(autonomous_spec(name="yaml-coder")))
        assert workflow.id.startswith("wf_") and workflow.name == "yaml-coder" and workflow.type == "autonomous"
        assert client.workflows.get(workflow.id).spec["receiver"] == "coder"

    def test_publish_and_list_the_gallery(self, client):
        session = client.sessions.create(workflow=autonomous_spec(), name="client-gallery")
        client.messages.send(session.id, "What is 6*7?", wait=True)
        item = client.gallery.publish(session.id, ["client-tag"])
        assert isinstance(item, GalleryItem) and item.tags == ["client-tag"] and len(item.messages) == 2
        assert [i.id for i in client.gallery.list(tag="client-tag").data] == [item.id]
        client.gallery.delete(item.id)
        with pytest.raises(NotFoundError):
            client.gallery.get(item.id)
        assert client.gallery.list(tag="client-tag").data == []


class TestRunStream:
    def test_events_in_order_until_done(self, client):
        session = client.sessions.create(workflow=autonomous_spec())
        run = client.messages.send(session.id, "What is 12*(3+4)?").run
        events = list(client.runs.stream(run.id))
        assert_whole_run(events)
        assert events[-1].data == {"status": "completed"}
        assert client.runs.get(run.id).status == "completed"

    def test_resumes_after_dropped_connections_without_gaps_or_duplicates(self, base_url):
        transport = DroppingTransport(events_per_connection=2)
        with Client(base_url, transport=transport, retry=RetryPolicy(initial_delay_s=0.01)) as client:
            session = client.sessions.create(workflow=autonomous_spec())
            run = client.messages.send(session.id, "What is 12*(3+4)?").run
            streamed = list(client.runs.stream(run.id))
            stored = client.runs.events(run.id)
        assert_whole_run(streamed)
        assert [e.model_dump() for e in streamed] == [e.model_dump() for e in stored]
        # Every connection was cut after two events and a half: each resumed after the last whole one.
        assert len(transport.last_event_ids) >= 3
        assert transport.last_event_ids == [None, *(str(2 * n) for n in range(1, len(transport.last_event_ids)))]

    def test_starting_after_skips_the_earlier_events(self, client):
        session = client.sessions.create(workflow=autonomous_spec())
        run = client.messages.send(session.id, "What is 6*7?", wait=True).run
        every = client.runs.events(run.id)
        assert [e.seq for e in client.runs.stream(run.id, starting_after=3)] == [e.seq for e in every[3:]]

    def test_a_sessions_runs_page_by_page(self, client):
        session = client.sessions.create(workflow=autonomous_spec())
        first = client.messages.send(session.id, "What is 6*7?", wait=True).run
        second = client.messages.send(session.id, "What is 12*(3+4)?", wait=True).run
        runs = client.runs.list(session.id, order="asc")
        assert [r.id for r in runs.data] == [first.id, second.id] and not runs.has_more
        assert all(r.status == "completed" and r.session_id == session.id for r in runs.data)
        newest = client.runs.list(session.id, limit=1, order="desc")
        assert [r.id for r in newest.data] == [second.id] and newest.has_more
        assert [r.id for r in client.runs.list(session.id, limit=1, order="desc", after=newest.last_id).data] \
            == [first.id]

    def test_cancel_returns_the_run(self, client):
        session = client.sessions.create(workflow=autonomous_spec())
        run = client.messages.send(session.id, "What is 6*7?", wait=True).run
        assert client.runs.cancel(run.id).status == "completed"  # a finished run is returned unchanged


class TestErrors:
    def test_unknown_run_is_not_found_with_the_error_body(self, client):
        with pytest.raises(NotFoundError) as caught:
            client.runs.get("run_doesnotexist")
        error = caught.value
        assert error.status_code == 404
        assert error.body == {"error": {"type": error.type, "message": error.message, "param": error.param,
                                        "code": error.code}}
        assert error.type == "not_found_error" and error.code == "run_not_found"
        assert error.request_id
        assert error.method == "GET" and error.path == "/api/v1/runs/run_doesnotexist"
        assert str(error) == f"GET /api/v1/runs/run_doesnotexist -> 404 not_found_error: {error.message}"

    def test_streaming_an_unknown_run_is_not_found(self, client):
        with pytest.raises(NotFoundError) as caught:
            next(client.runs.stream("run_doesnotexist"))
        assert caught.value.path == "/api/v1/runs/run_doesnotexist/events"

    def test_invalid_spec_is_an_invalid_request(self, client):
        with pytest.raises(InvalidRequestError) as caught:
            client.sessions.create(workflow={"name": "x", "type": "nonsense"})
        assert caught.value.status_code in (400, 422) and caught.value.type

    def test_missing_api_key_is_an_authentication_error(self, apikey_server: ServerProcess,
                                                        api_keys: dict[str, str]):
        with Client(apikey_server.base_url) as anonymous, pytest.raises(AuthenticationError) as caught:
            anonymous.sessions.list()
        assert caught.value.status_code == 401
        with Client(apikey_server.base_url, api_key=api_keys["alice"]) as alice:
            created = alice.sessions.create(workflow=autonomous_spec())
            assert created.id in [s.id for s in alice.sessions.list(limit=100).data]


async def test_async_client(base_url: str):
    async with AsyncClient(base_url) as client:
        session = await client.sessions.create(workflow=autonomous_spec())
        posted = await client.messages.send(session.id, "What is 12*(3+4)?", wait=True)
        assert posted.reply is not None and "84" in posted.reply.content
        events = [event async for event in client.runs.stream(posted.run.id)]
        assert_whole_run(events)
        assert [r.id for r in (await client.runs.list(session.id)).data] == [posted.run.id]
        item = await client.gallery.publish(session.id, ["async-client"])
        await client.gallery.delete(item.id)
        with pytest.raises(NotFoundError):
            await client.gallery.get(item.id)
        with pytest.raises(NotFoundError):
            await client.sessions.get("ses_doesnotexist")


class TestRetries:
    def test_429_is_retried_after_retry_after_with_the_same_idempotency_key(self):
        with StubServer([(429, {"retry-after": "1"}, ERROR_429), (201, {}, SESSION)]) as stub, \
                Client(stub.url, retry=RetryPolicy(max_retries=2, initial_delay_s=0.01)) as client:
            session = client.sessions.create(workflow=autonomous_spec())
        assert session.id == SESSION["id"]
        first, second = stub.requests
        assert first["key"] and first["key"] == second["key"]
        assert json.loads(first["body"]) == json.loads(second["body"])
        assert second["at"] - first["at"] >= 0.95  # retry-after: 1, though the backoff alone is 10 ms

    def test_503_is_retried_with_backoff(self):
        with StubServer([(503, {}, {"error": {"type": "unavailable", "message": "later"}}), (200, {}, SESSION)]) \
                as stub, Client(stub.url, retry=RetryPolicy(initial_delay_s=0.01)) as client:
            assert client.sessions.get(SESSION["id"]).id == SESSION["id"]
        assert len(stub.requests) == 2

    def test_gives_up_with_a_rate_limit_error(self):
        with StubServer([(429, {"retry-after": "0"}, ERROR_429)] * 3) as stub, \
                Client(stub.url, retry=RetryPolicy(max_retries=2)) as client, \
                pytest.raises(RateLimitError) as caught:
            client.sessions.create(workflow=autonomous_spec())
        assert len(stub.requests) == 3 and len({r["key"] for r in stub.requests}) == 1
        assert caught.value.status_code == 429 and caught.value.body == ERROR_429

    def test_every_create_gets_its_own_key(self):
        with StubServer([(201, {}, SESSION), (201, {}, SESSION)]) as stub, Client(stub.url) as client:
            client.sessions.create(workflow=autonomous_spec())
            client.sessions.create(workflow=autonomous_spec())
        keys = [r["key"] for r in stub.requests]
        assert all(keys) and keys[0] != keys[1]

    def test_real_rate_limit_is_waited_out(self, server: ServerProcess):
        # The local server allows 50 requests/s in bursts of 200: exhaust the burst of one user, then retry.
        headers = {"X-User-Id": "client-rate-limit"}
        with Client(server.base_url, headers=headers, retry=RetryPolicy(max_retries=0)) as strict:
            with pytest.raises(RateLimitError) as caught:
                for _ in range(400):
                    strict.sessions.list(limit=1)
        assert caught.value.code == "rate_limit_exceeded"
        with Client(server.base_url, headers=headers) as patient:
            assert patient.sessions.list(limit=1).object == "list"


SESSION = {"id": "ses_stub", "object": "session", "user_id": "usr_stub", "name": None, "workflow_id": "wf_stub",
           "created_at": 1, "updated_at": 1}
ERROR_429 = {"error": {"type": "rate_limit_error", "message": "slow down", "param": None,
                       "code": "rate_limit_exceeded"}}


class StubServer:
    """A loopback HTTP server answering each request with the next of `answers` (status, headers, JSON body) and
    recording what it was sent."""

    def __init__(self, answers: list[tuple[int, dict[str, str], Any]]) -> None:
        self.answers = list(answers)
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                stub.requests.append({"at": time.monotonic(), "method": self.command, "path": self.path,
                                      "key": self.headers.get("idempotency-key"),
                                      "body": self.rfile.read(length).decode()})
                status, headers, body = stub.answers.pop(0)
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _CutStream(httpx.SyncByteStream):
    """The body of an event stream, cut off in the middle of the event after the first `events` ones."""

    def __init__(self, inner: httpx.SyncByteStream, events: int) -> None:
        self.inner = inner
        self.events = events

    def __iter__(self) -> Iterator[bytes]:
        seen = b""
        for chunk in self.inner:
            seen += chunk
            blocks = seen.split(b"\n\n")
            complete = [b for b in blocks[:-1] if not b.startswith(b":")]
            if len(complete) > self.events:
                end = seen.index(complete[self.events])  # where the first event to lose begins
                yield seen[:end + len(complete[self.events]) // 2]
                raise httpx.RemoteProtocolError("connection dropped by the test transport")
        yield seen

    def close(self) -> None:
        self.inner.close()


class DroppingTransport(httpx.BaseTransport):
    """A real HTTP transport whose event streams break after a few events, recording each `Last-Event-ID`."""

    def __init__(self, events_per_connection: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.events_per_connection = events_per_connection
        self.last_event_ids: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if "text/event-stream" not in request.headers.get("accept", ""):
            return response
        self.last_event_ids.append(request.headers.get("last-event-id"))
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(response.status_code, headers=response.headers, extensions=response.extensions,
                              stream=_CutStream(response.stream, self.events_per_connection))

    def close(self) -> None:
        self.inner.close()
