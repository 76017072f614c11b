"""Workflow spec bodies arrive as JSON or YAML; parsed here, validated by the workflows room."""

from __future__ import annotations

from typing import Any

from autobots.errors import InvalidRequest
from autobots.web.request_guards import UnsupportedMediaType, body_kind
from autobots.workflows import parse_spec_text
from fastapi import Request

SPEC_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WorkflowSpec"}},
            "application/yaml": {"schema": {"$ref": "#/components/schemas/WorkflowSpec"}},
        },
    }
}


async def read_spec_document(request: Request) -> Any:
    """The decoded body: JSON (application/json, application/*+json) or YAML (application/yaml, text/yaml,
    application/x-yaml); another content type, or none, is 415 (`RequestGuardMiddleware` refuses it first)."""
    raw = await request.body()
    if not raw.strip():
        raise InvalidRequest("the body is empty: send a workflow spec", code="empty_body")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the body is not UTF-8", code="invalid_body") from exc
    kind = body_kind(request.headers.get("content-type"))
    if kind is None:
        raise UnsupportedMediaType("unsupported media type: send application/json or application/yaml")
    return parse_spec_text(text, kind)
