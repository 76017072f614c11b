"""What the API process's `WorkerPool` and its run workers say to each other: one typed message per JSON line.

This module is the whole boundary between the two programs (`_pool.py` and `_worker.py` only build and match
these messages): every message is a dataclass here, and `open_link`, `encode`, the `decode_*` functions and
`receive` are the only code that knows the framing and the wire format. Scale-out will change how runs reach
workers; what crosses between the processes changes here. A line that is not a message of this protocol (not
JSON, an unknown op, missing or extra fields) raises `ProtocolError`; `receive` logs it and goes on, so a
message is never dropped silently.

API process → worker: `Hello` (first, once), `Kick`, `Follow`, `Cancel` (answered by `Reply`), `Secrets`,
`Stop`. Worker → API process: `Ready`, `Open`, `EventsSoFar` and `NewEvent` (only while the API process has
a follower for the run), `Close`, `Discard`, `Settled`, `Changed`, `Released`, `Reply`, `Stopped`.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar

from autobots.runs._channel import Event
from autobots.workflows.secrets import ModelSecrets

__all__ = [
    "LINE_LIMIT", "Cancel", "Changed", "Close", "Discard", "EventsSoFar", "Follow", "Hello", "Kick", "NewEvent",
    "Open", "ProtocolError", "Ready", "Released", "Reply", "Secrets", "Settled", "Stop", "Stopped", "ToPool",
    "ToWorker", "decode_hello", "decode_to_pool", "decode_to_worker", "encode", "open_link", "receive",
]

logger = logging.getLogger("autobots.runs.workers")
# The longest line either side reads: a run's events so far, in one message, can be large.
LINE_LIMIT = 64 * 1024 * 1024
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class ProtocolError(Exception):
    """A line that is no message of this protocol, or not one this side accepts."""


class _Flat:
    """A message whose JSON object is its op and its fields, as they are (JSON values already)."""

    __slots__ = ()
    op: ClassVar[str]

    def to_wire(self) -> dict[str, Any]:
        return {"op": self.op, **{name: getattr(self, name) for name in _field_names(type(self))}}

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Any:
        return cls(**body)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _event_of(body: dict[str, Any]) -> Event:
    return Event(seq=body["seq"], type=body["type"], data=body["data"], created_at=body["created_at"])


def _event_body(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "data": event.data, "created_at": event.created_at}


# -- API process → worker ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello(_Flat):
    """The first line a worker reads: who it is, the server's settings, and the model keys held so far."""

    op: ClassVar[str] = "hello"
    index: int
    count: int
    settings: dict[str, Any]
    secrets: dict[str, ModelSecrets]
    max_concurrent: int


@dataclass(frozen=True, slots=True)
class Kick(_Flat):
    """The session has queued runs: drive it. `number` grows with every kick the pool sends (see `Released`)."""

    op: ClassVar[str] = "kick"
    session_id: str
    user_id: str
    number: int


@dataclass(frozen=True, slots=True)
class Follow(_Flat):
    """The API process has a follower for the run: send its events so far, then each new one."""

    op: ClassVar[str] = "follow"
    run_id: str


@dataclass(frozen=True, slots=True)
class Cancel(_Flat):
    """Cancel the run (of the session); answered by a `Reply` with the same `request_id`."""

    op: ClassVar[str] = "cancel"
    request_id: int
    run_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Secrets(_Flat):
    """A workflow's inline model keys changed (`keys` None: forget them). They are never stored."""

    op: ClassVar[str] = "secrets"
    workflow_id: str
    keys: ModelSecrets | None


@dataclass(frozen=True, slots=True)
class Stop(_Flat):
    """Interrupt the runs (they are requeued or failed), say `Stopped`, and exit."""

    op: ClassVar[str] = "stop"


# -- worker → API process ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ready(_Flat):
    """The worker is up and takes runs."""

    op: ClassVar[str] = "ready"


@dataclass(frozen=True, slots=True)
class Open(_Flat):
    """A run started here: open its live channel (empty until someone follows it)."""

    op: ClassVar[str] = "open"
    run_id: str


@dataclass(frozen=True, slots=True)
class EventsSoFar:
    """Answer to `Follow`: the run's events up to now (the channel keeps those it does not hold yet)."""

    op: ClassVar[str] = "events"
    run_id: str
    events: list[Event]

    def to_wire(self) -> dict[str, Any]:
        return {"op": self.op, "run_id": self.run_id, "events": [_event_body(event) for event in self.events]}

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> EventsSoFar:
        return cls(run_id=body["run_id"], events=[_event_of(event) for event in body["events"]])


@dataclass(frozen=True, slots=True)
class NewEvent:
    """One more event of a followed run. The hot path (one per agent message per followed run): the event's
    fields sit beside `run_id` in the line, which spares a nested object on both sides."""

    op: ClassVar[str] = "event"
    run_id: str
    event: Event

    def to_wire(self) -> dict[str, Any]:
        event = self.event
        return {"op": self.op, "run_id": self.run_id, "seq": event.seq, "type": event.type, "data": event.data,
                "created_at": event.created_at}

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> NewEvent:
        return cls(run_id=body["run_id"], event=_event_of(body))


@dataclass(frozen=True, slots=True)
class Close(_Flat):
    """The run's attempt ended here: close its live channel (followers finish from the database)."""

    op: ClassVar[str] = "close"
    run_id: str


@dataclass(frozen=True, slots=True)
class Discard(_Flat):
    """Forget the run's live channel."""

    op: ClassVar[str] = "discard"
    run_id: str


@dataclass(frozen=True, slots=True)
class Settled(_Flat):
    """The run is terminal or back in the queue: wake whoever waits for it."""

    op: ClassVar[str] = "settled"
    run_id: str


@dataclass(frozen=True, slots=True)
class Changed(_Flat):
    """The session's messages were committed: the API process's message cache drops the session."""

    op: ClassVar[str] = "changed"
    session_id: str


@dataclass(frozen=True, slots=True)
class Released(_Flat):
    """The worker stopped driving the session; `last_kick` is the number of the last `Kick` it had for it."""

    op: ClassVar[str] = "released"
    session_id: str
    last_kick: int


@dataclass(frozen=True, slots=True)
class Reply(_Flat):
    """The answer to the request `request_id`: done, or refused with an error code and message."""

    op: ClassVar[str] = "reply"
    request_id: int
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, slots=True)
class Stopped(_Flat):
    """The worker's last word before it exits on its own terms (`Stop`, SIGTERM, or its API process gone): its
    engine shut down, and every run it held is requeued, cancelled or failed. A worker that exits without it
    crashed or was killed, and left its runs `running` for recovery."""

    op: ClassVar[str] = "stopped"


ToWorker = Kick | Follow | Cancel | Secrets | Stop
ToPool = NewEvent | EventsSoFar | Open | Close | Discard | Settled | Changed | Released | Reply | Ready | Stopped
Message = Hello | ToWorker | ToPool
M = TypeVar("M")

_TO_WORKER: dict[str, Callable[[dict[str, Any]], ToWorker]] = {
    kind.op: kind.from_wire for kind in (Kick, Follow, Cancel, Secrets, Stop)}
_TO_POOL: dict[str, Callable[[dict[str, Any]], ToPool]] = {
    kind.op: kind.from_wire for kind in (NewEvent, EventsSoFar, Open, Close, Discard, Settled, Changed, Released,
                                         Reply, Ready, Stopped)}
_HELLO: dict[str, Callable[[dict[str, Any]], Hello]] = {Hello.op: Hello.from_wire}


async def open_link(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over one end of the socket pair that links the API process and a worker."""
    return await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)


def encode(message: Message) -> bytes:
    """The message as one line."""
    return _ENCODER.encode(message.to_wire()).encode() + b"\n"


def decode_hello(line: bytes) -> Hello:
    """A worker's first line."""
    return _decode(line, _HELLO)


def decode_to_worker(line: bytes) -> ToWorker:
    """A line a worker reads after `Hello`."""
    return _decode(line, _TO_WORKER)


def decode_to_pool(line: bytes) -> ToPool:
    """A line the API process reads from a worker."""
    return _decode(line, _TO_POOL)


def _decode(line: bytes, kinds: dict[str, Callable[[dict[str, Any]], M]]) -> M:
    # Errors name the op and the field, never a value: messages carry model keys and users' content.
    try:
        # Decoded first: `json.loads` of bytes detects their encoding in Python, which costs more than this.
        body = json.loads(line.decode())
    except ValueError as exc:
        raise ProtocolError(f"a line that is not JSON ({exc})") from None
    op = body.pop("op", None) if isinstance(body, dict) else None
    kind = kinds.get(op) if isinstance(op, str) else None
    if kind is None:
        raise ProtocolError(f"unexpected op {op!r}" if isinstance(op, str) else "a line without an op")
    try:
        return kind(body)
    except (KeyError, TypeError) as exc:
        raise ProtocolError(f"a malformed {op!r} message ({type(exc).__name__}: {exc})") from None


async def receive(reader: asyncio.StreamReader, decode: Callable[[bytes], M], *, peer: str) -> AsyncIterator[M]:
    """The messages `peer` sends, until it closes the link. A line that is no message is logged as an error and
    skipped. A broken link (`ConnectionError`, or `ValueError` for a line over `LINE_LIMIT`) is raised."""
    while line := await reader.readline():
        try:
            message = decode(line)
        except ProtocolError as exc:
            logger.error("%s sent %s; skipped", peer, exc)
            continue
        yield message
