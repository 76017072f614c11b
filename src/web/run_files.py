"""The files a run's code wrote: a bounded listing, and downloads streamed from a worker thread.

A download never holds a file in memory or reads it on the event loop: the file is opened (component by
component, without following symlinks) in a thread, its size checked against `max_download_bytes`, then sent
in chunks each read in a thread. A file larger than the limit is refused before anything is sent (422
`file_too_large`), never cut short. If the file shrinks while it is sent, the response ends early and the
server closes the connection: the client sees an incomplete transfer, not a short success.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from autobots.errors import AutobotsError, NotFound
from autobots.sandbox import SandboxManager, WorkspaceFile
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("autobots.web")

CHUNK_BYTES = 256 * 1024
_UNSAFE_IN_QUOTED_NAME = re.compile(r'[^\x20-\x7e]|["\\%]')
_ATTR_CHARS = "!#$&+-.^_`|~"  # RFC 5987 attr-char besides letters and digits


class FileTooLarge(AutobotsError):
    status = 422
    code = "file_too_large"


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII `filename` fallback and the exact name as `filename*` (RFC 6266, RFC 5987):
    quotes, backslashes, control and non-ASCII characters never reach the quoted parameter."""
    fallback = _UNSAFE_IN_QUOTED_NAME.sub("_", name) or "download"
    encoded = quote(name.encode("utf-8", "replace"), safe=_ATTR_CHARS)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


async def list_run_files(sandbox: SandboxManager | None, run_id: str) -> dict[str, Any]:
    """The run's workspace files as a list object; `truncated` (and `has_more`) when a listing limit cut it."""
    files: list[dict[str, object]] = []
    truncated = False
    if sandbox is not None:
        listing = await asyncio.to_thread(sandbox.scan_files, run_id)
        files, truncated = listing.files, listing.truncated
    return {"object": "list", "data": [{"object": "run.file", **f} for f in files], "has_more": truncated,
            "truncated": truncated, "first_id": None, "last_id": None}


async def download_run_file(sandbox: SandboxManager | None, run_id: str, path: str, *,
                            limit: int) -> WorkspaceFileResponse:
    """A streaming response for one workspace file, refused (422) when larger than `limit` bytes."""
    if sandbox is None:
        raise NotFound(f"no file {path!r} in this run's workspace", param="path", code="file_not_found")
    opened = await asyncio.to_thread(sandbox.open_file, run_id, path)
    if opened.size > limit:
        opened.close()
        raise FileTooLarge(f"the file {path!r} is {opened.size} bytes, more than the download limit of {limit} "
                           "bytes (max_download_bytes)", param="path")
    return WorkspaceFileResponse(opened)


class WorkspaceFileResponse(StreamingResponse):
    """Streams an opened workspace file (exactly the size it had when opened); closes it however it ends."""

    def __init__(self, opened: WorkspaceFile) -> None:
        self.opened = opened
        super().__init__(self._chunks(), media_type="application/octet-stream", headers={
            "content-length": str(opened.size), "content-disposition": content_disposition(opened.name)})

    async def _chunks(self) -> AsyncIterator[bytes]:
        remaining = self.opened.size
        while remaining > 0:
            # Not abandoned on cancellation: the file is closed only once no thread reads it.
            chunk = await anyio.to_thread.run_sync(self.opened.handle.read, min(CHUNK_BYTES, remaining))
            if not chunk:
                logger.warning("workspace file %r shrank while it was sent; the response ends early",
                               self.opened.name)
                return
            remaining -= len(chunk)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.opened.close()
