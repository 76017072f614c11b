"""Process health, readiness and metrics.

`/healthz` is open. In apikey mode, `/readyz` answers only its status (and 200 or 503) unless the caller
presents the operator key, and `/metrics` is 401 without it; the database's location is never shown.
"""

from __future__ import annotations

from typing import Any

from autobots import models
from autobots.db import database_kind
from autobots.errors import Unauthorized
from autobots.web.auth import OperatorAccess
from autobots.web.deps import ServicesDep
from autobots.web.schemas import ErrorBody
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep, operator: OperatorAccess) -> JSONResponse:
    """Database reachable; run executors connected; which sandbox runs code and why; which default model answers
    (the details for operators only in apikey mode)."""
    checks: dict[str, Any] = {}
    ready = True
    kind = database_kind(services.settings.database_url)
    try:
        await services.db.ping()
        checks["database"] = {"ok": True, "kind": kind}
    except Exception as exc:
        ready = False
        checks["database"] = {"ok": False, "kind": kind, "error": type(exc).__name__}
    checks["runs"] = services.runs.describe()
    ready = ready and checks["runs"]["ok"]
    choice = services.sandbox.choice if services.sandbox is not None else None
    checks["sandbox"] = {
        "ok": True, "backend": choice.kind if choice else None, "reason": choice.reason if choice else "disabled",
        "isolated": choice.isolated if choice else None, "available": sorted(choice.available) if choice else [],
    }
    default = models.resolve_default_model(services.settings)
    checks["default_model"] = {"provider": default.provider, "model": default.model}
    if models.is_scripted(default):
        checks["default_model"]["note"] = ("scripted is an offline stand-in for demos and tests, not a language "
                                           "model: configure an API key or a model server for real answers")
    status = "ready" if ready else "not_ready"
    return JSONResponse(status_code=200 if ready else 503,
                        content={"status": status, "checks": checks} if operator else {"status": status})


@router.get("/metrics", response_class=Response, responses={
    401: {"model": ErrorBody, "description": "apikey mode without the operator key"}})
async def metrics(services: ServicesDep, operator: OperatorAccess) -> Response:
    """Prometheus text format (operators only in apikey mode)."""
    if not operator:
        raise Unauthorized("/metrics needs the operator key: send 'Authorization: Bearer <operator key>'",
                           code="operator_key_required")
    services.metrics.live_runs.set(services.runs.live_count)
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")
