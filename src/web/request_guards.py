"""Checks made before anything else sees a request: its Host (local mode), its URL path, its body's media type.

- Host (auth mode `local` only): the server answers only to loopback names, `127.0.0.1`, `localhost`, `[::1]`
  and its configured `host`, each with any port. A web page whose own name was re-pointed at 127.0.0.1 (DNS
  rebinding) would otherwise reach an unauthenticated local server from the user's browser; its requests
  carry the page's name as Host. Anything else, or no Host at all, is 400 `host_not_allowed`.
- Path: a NUL byte anywhere in it is 400 `invalid_path` (no id or file name holds one; PostgreSQL refuses it).
- Body: a NUL character in a JSON body (the escape `\\u0000`) is 400 `invalid_body`, raised while the handler
  reads the body: no field accepts one, and PostgreSQL cannot store one in text or JSON.
- Body media type: a POST, PUT or PATCH that has a body must declare JSON (`application/json`,
  `application/*+json`); the workflow routes (`YAML_BODY_PREFIX`: their bodies are specs, `SPEC_BODY_OPENAPI`)
  also take YAML (`application/yaml`, `application/x-yaml`, `text/yaml`). Anything else, or none, is 415
  `unsupported_media_type`: a cross-site form or `text/plain` post (which browsers send without asking) never
  reaches a handler.

Errors leave in the contract's shape with an `x-request-id`; under the seed-era `/api/` routes, in their
envelope. This middleware is the outermost, so that a refused request reaches no other layer (the idempotency
layer would otherwise replay a stored answer to it).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from autobots.compat import envelope
from autobots.config import LOOPBACK_HOSTS, Settings
from autobots.errors import AutobotsError
from autobots.web.errors import error_body
from autobots.web.middleware import MAX_REQUEST_ID_LENGTH, new_request_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BodyKind = Literal["json", "yaml"]
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
YAML_BODY_PREFIX = "/api/v1/workflows"


class UnsupportedMediaType(AutobotsError):
    status = 415
    code = "unsupported_media_type"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="Content-Type")


def media_type_of(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json` (lower case; empty when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def body_kind(content_type: str | None) -> BodyKind | None:
    """How a body of this content type is decoded: `json`, `yaml`, or None (not a type we accept)."""
    media_type = media_type_of(content_type)
    if media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json")):
        return "json"
    return "yaml" if media_type in YAML_MEDIA_TYPES else None


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host names (without port, IPv6 in brackets) a local-mode server answers to."""
    names = {*LOOPBACK_HOSTS, settings.host.lower()}
    return frozenset(f"[{name}]" if ":" in name else name for name in names)


def host_name(value: str) -> str | None:
    """The name part of a Host header value (IPv6 kept in brackets), lower case; None when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, port = (value[:end + 1], value[end + 1:]) if end > 0 else ("", "")
    else:
        name, colon, rest = value.partition(":")
        port = colon + rest
    if not name or (port and not (port.startswith(":") and port[1:].isdigit())):
        return None
    return name


class RequestGuardMiddleware:
    """Pure ASGI middleware applying the checks of this module (the Host check only when `check_host`)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.check_host = settings.auth_mode == "local"
        self.hosts = allowed_hosts(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        refusal = self._refusal(scope, headers)
        if refusal is None:
            if scope["method"] in BODY_METHODS:
                receive = _refusing_nul(receive)
            await self.app(scope, receive, send)
            return
        status, message, param, code = refusal
        await _send_error(scope, send, headers, status, message, param=param, code=code)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str, str, str] | None:
        if self.check_host:
            host = headers.get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                return (400, f"Host {host[:100]!r} is not allowed: in auth mode 'local' this server answers only to "
                             f"{', '.join(sorted(self.hosts))} (with any port)", "Host", "host_not_allowed")
        if "\x00" in scope["path"]:
            return 400, "the URL path contains a NUL byte", "path", "invalid_path"
        if scope["method"] in BODY_METHODS and _has_body(headers):
            content_type = headers.get(b"content-type", b"").decode("latin-1")
            kind = body_kind(content_type)
            if kind == "json":
                return None
            takes_yaml = scope["path"] == YAML_BODY_PREFIX or scope["path"].startswith(YAML_BODY_PREFIX + "/")
            if kind is None or not takes_yaml:
                sent = f"content-type {media_type_of(content_type)!r}" if content_type else "no content-type"
                accepted = "application/json or application/yaml" if takes_yaml else "application/json"
                return (415, f"unsupported media type: the body has {sent}; send {accepted}", "Content-Type",
                        "unsupported_media_type")
        return None


# A JSON `\u0000` escape: preceded by an even number of backslashes (an odd one would escape its backslash).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000|\x00")
_NUL_CONTEXT_BYTES = 64


class NulInBody(AutobotsError):
    status = 400
    code = "invalid_body"


def _refusing_nul(receive: Receive) -> Receive:
    """`receive`, raising `NulInBody` once the body holds a NUL character (chunk borders included)."""
    tail = b""

    async def checked() -> Message:
        nonlocal tail
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if _NUL_ESCAPE.search(tail + chunk):
                raise NulInBody("the body holds a NUL character (\\u0000), which no field accepts")
            tail = (tail + chunk)[-_NUL_CONTEXT_BYTES:]
        return message

    return checked


def _has_body(headers: dict[bytes, bytes]) -> bool:
    length = headers.get(b"content-length")
    if length is not None:
        return length.strip() != b"0"
    return b"transfer-encoding" in headers


async def _send_error(scope: Scope, send: Send, headers: dict[bytes, bytes], status: int, message: str, *,
                      param: str, code: str) -> None:
    type = "invalid_request_error"
    payload: dict[str, Any] = error_body(type, message, param=param, code=code)
    if envelope.is_seed_path(scope["path"]):
        payload = envelope.error_envelope(message, {"type": type, "code": code, "param": param})
    body = json.dumps(payload).encode()
    request_id = headers.get(b"x-request-id", b"")[:MAX_REQUEST_ID_LENGTH] or new_request_id()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id)]})
    await send({"type": "http.response.body", "body": body})
