"""Process health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from autobots import models
from autobots.db import redacted_url
from autobots.web.deps import ServicesDep
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

router = APIRouter(tags=["service"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Database reachable; run executors connected; which sandbox runs code and why; which default model answers."""
    checks: dict[str, Any] = {}
    ready = True
    try:
        await services.db.ping()
        checks["database"] = {"ok": True, "url": redacted_url(services.settings.database_url)}
    except Exception as exc:
        ready = False
        checks["database"] = {"ok": False, "error": type(exc).__name__}
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
    return JSONResponse(status_code=200 if ready else 503,
                        content={"status": "ready" if ready else "not_ready", "checks": checks})


@router.get("/metrics", response_class=Response)
async def metrics(services: ServicesDep) -> Response:
    """Prometheus text format."""
    services.metrics.live_runs.set(services.runs.live_count)
    return Response(services.metrics.render(), media_type="text/plain; version=0.0.4")
