"""The FastAPI application factory and its lifespan (migrate, sandbox, run manager)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from autobots import __version__, models
from autobots.config import Settings, get_settings
from autobots.db import Database, migrate_to_head, redacted_url
from autobots.errors import AutobotsError
from autobots.runs import RunManager, worker_count
from autobots.sandbox import SandboxManager
from autobots.sessions.message_cache import message_cache
from autobots.web import ui
from autobots.web.admission import WriteAdmission
from autobots.web.deps import Services
from autobots.web.errors import install_error_handlers
from autobots.web.idempotency import IdempotencyMiddleware
from autobots.web.metrics import Metrics
from autobots.web.middleware import RequestContextMiddleware
from autobots.web.quotas import RateLimitMiddleware, StreamCounter
from autobots.web.request_guards import RequestGuardMiddleware
from autobots.web.routers import gallery, health, messages, modules, router, runs, sessions, workflows
from autobots.workflows.schemas import WorkflowSpec
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

logger = logging.getLogger("autobots")


class UnsafeConfiguration(AutobotsError):
    code = "unsafe_configuration"


def check_safe(settings: Settings) -> None:
    """Refuse configurations that would expose an unauthenticated server."""
    if settings.auth_mode == "local" and not settings.listens_on_loopback:
        raise UnsafeConfiguration(
            f"auth_mode 'local' is only allowed on loopback, not on host {settings.host!r}: "
            "set AUTOBOTS_AUTH_MODE=apikey and create keys with `python -m autobots users add NAME`")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    check_safe(settings)
    await asyncio.to_thread(migrate_to_head, settings.database_url)
    db = Database(settings.database_url)
    message_cache.enabled = db.is_sqlite  # only a database this process alone writes to (see message_cache)
    workers = worker_count(settings)
    # With run workers, code runs there (each with its own warm pool); here the sandbox only answers which
    # backends exist and serves workspace files.
    sandbox = SandboxManager(settings.model_copy(update={"sandbox_pool_size": 0}) if workers else settings)
    choice = await sandbox.start()
    runs = RunManager(db, settings, sandbox)
    app.state.services = Services(settings=settings, db=db, runs=runs, sandbox=sandbox, metrics=app.state.metrics)
    default = models.resolve_default_model(settings)
    logger.info("database: %s", redacted_url(settings.database_url))
    logger.info("auth mode: %s", settings.auth_mode)
    logger.info("sandbox: %s (%s)", choice.kind or "none: code execution refused", choice.reason)
    logger.info("default model: %s/%s%s", default.provider, default.model,
                " (offline stand-in, not a language model)" if models.is_scripted(default) else "")
    logger.info("limits: %s s, %s messages, %s tokens per run; %s concurrent runs", settings.run_max_seconds,
                settings.run_max_messages, settings.run_max_tokens, settings.max_concurrent_runs)
    if settings.run_dispatch == "procrastinate":
        logger.info("runs execute in `python -m autobots worker` processes, dispatched through the database")
    else:
        logger.info("runs execute %s", f"in {workers} worker process(es)" if workers else "in this process")
    await runs.start()
    try:
        yield
    finally:
        await runs.shutdown()
        await sandbox.stop()
        await db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(title="autobots", version=__version__, lifespan=lifespan,
                  description="Runs multi-agent AutoGen workflows: workflows, sessions, runs, gallery. Per-user "
                              "quotas (active runs, open event streams, requests a second per API key) answer 429 "
                              "with a `retry-after` header when exceeded.")
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.streams = StreamCounter(settings.max_streams_per_user)
    install_error_handlers(app)
    # Imported here, not at the top: `autobots.compat` builds on this package's auth, dependencies and schemas,
    # and importing any of them runs this package's __init__, which imports this module.
    from autobots.compat import routes as compat

    for module in (workflows, modules, sessions, messages, runs, router, gallery, health, compat, ui):
        app.include_router(module.router)
    app.add_middleware(WriteAdmission, limit=settings.max_concurrent_writes)
    app.add_middleware(RateLimitMiddleware, rate=settings.rate_limit_per_key, burst=settings.rate_limit_burst,
                       local_mode=settings.auth_mode == "local")
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, metrics=app.state.metrics,
                       wrap_posts=IdempotencyMiddleware)
    app.add_middleware(RequestGuardMiddleware, settings=settings)  # outermost: a refused request reaches nothing
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the WorkflowSpec schema that spec bodies (JSON or YAML) refer to."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    spec_schema = WorkflowSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(spec_schema.pop("$defs", {}))
    schemas["WorkflowSpec"] = spec_schema
    document["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    document["security"] = [{"bearerAuth": []}]
    app.openapi_schema = document
    return document
