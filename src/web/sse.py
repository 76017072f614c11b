"""Server-Sent Events for run streams: replay from the database or memory, then follow the live run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from autobots.db import Database
from autobots.db.repositories import TERMINAL_STATUSES
from autobots.db.repositories.runs import stored_events_after
from autobots.runs import Event, RunManager
from fastapi.responses import StreamingResponse

KEEPALIVE_S = 15.0
POLL_S = 5.0  # how often a follower of a run that is not live here looks at the database
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
# `json.dumps` with separators builds an encoder per call; this is the same encoder, built once.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def wants_event_stream(accept: str | None) -> bool:
    return bool(accept) and "text/event-stream" in accept  # type: ignore[operator]


def format_event(event: Event) -> str:
    payload = {"seq": event.seq, "type": event.type, "data": event.data, "created_at": event.created_at}
    return f"id: {event.seq}\nevent: {event.type}\ndata: {_COMPACT.encode(payload)}\n\n"


async def run_events(db: Database, runs: RunManager, run_id: str, starting_after: int,
                     keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:
    """Every event after `starting_after`, exactly once, in order; ends after `done`."""
    position = starting_after
    while True:
        channel = runs.channels.get(run_id)
        if channel is not None:
            async for event in channel.follow(position, keepalive_s):
                if event is None:
                    yield ": keep-alive\n\n"
                    continue
                position = event.seq
                yield format_event(event)
                if event.type == "done":
                    return
            if channel.closed:
                continue
        rows, status = await db.read_in_thread(
            lambda connection, after=position: stored_events_after(connection, run_id, after))
        for row in rows:
            position = row.seq
            yield format_event(Event(seq=row.seq, type=row.type, data=row.data or {}, created_at=row.created_at))
            if row.type == "done":
                return
        if status is None or (status in TERMINAL_STATUSES and not rows):
            return
        if runs.channels.get(run_id) is None:
            await runs.channels.wait_for_change(run_id, limit_s=min(POLL_S, keepalive_s))
            if runs.channels.get(run_id) is None:
                yield ": waiting\n\n"


def event_stream_response(stream: AsyncIterator[str], headers: dict[str, Any] | None = None) -> StreamingResponse:
    return StreamingResponse(stream, media_type="text/event-stream", headers={**SSE_HEADERS, **(headers or {})})
