"""The browser page: `GET /` and its static files (`/static/<name>`, from `web/static/` in the package).

The page is plain ES modules that talk only to this service's API, so it is served with a Content-Security-Policy
that allows nothing but this origin: no inline script or style, no other host, no framing. The files are read
once, at first use; only names found in `web/static/` are served (no paths, so nothing outside it can be named).
They need no authentication: the page holds no data, and asks for an API key when the API answers 401.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated

from autobots.errors import NotFound
from fastapi import APIRouter, Header, Response

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)
IfNoneMatch = Annotated[str | None, Header()]


class StaticFileNotFound(NotFound):
    code = "static_file_not_found"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


@cache
def static_files() -> dict[str, StaticFile]:
    """The page's files by name, with their content types and validators."""
    files = {}
    for path in sorted(STATIC_DIR.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type is not None:
            body = path.read_bytes()
            files[path.name] = StaticFile(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
    return files


def _file_response(name: str, if_none_match: str | None) -> Response:
    file = static_files().get(name)
    if file is None:
        raise StaticFileNotFound(f"no file '{name}' on the page", param="name")
    # `no-cache`: the browser asks again each time, and a 304 answers when the file is unchanged.
    headers = {**SECURITY_HEADERS, "ETag": file.etag, "Cache-Control": "no-cache"}
    if if_none_match is not None and file.etag in {tag.strip() for tag in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(file.body, media_type=file.content_type, headers=headers)


@router.get("/")
async def page(if_none_match: IfNoneMatch = None) -> Response:
    """The page."""
    return _file_response("index.html", if_none_match)


@router.get("/static/{name}")
async def static_file(name: str, if_none_match: IfNoneMatch = None) -> Response:
    """One of the page's scripts or style sheets."""
    return _file_response(name, if_none_match)
