"""Workflow CRUD and spec handling. Services never commit: the caller's unit of work does."""

from __future__ import annotations

from typing import Any

from autobots import models
from autobots.config import Settings
from autobots.db.repositories import Page, PageQuery, WorkflowRepository
from autobots.db.tables import Workflow, new_id, now
from autobots.errors import NotFound
from autobots.models.schemas import ModelConfig
from autobots.workflows.schemas import WorkflowSpec
from autobots.workflows.secrets import redact_spec, vault
from autobots.workflows.validation import check_spec, validate_spec
from pydantic import SecretStr
from sqlmodel.ext.asyncio.session import AsyncSession


class WorkflowNotFound(NotFound):
    code = "workflow_not_found"


class SandboxView:
    """What validation needs to know about the sandbox: which backends may run code here."""

    def __init__(self, available: frozenset[str], default: str | None) -> None:
        self.available = available
        self.default = default


def check(data: Any, sandbox: SandboxView) -> tuple[WorkflowSpec | None, list[dict[str, str]]]:
    return check_spec(data, available_sandboxes=sandbox.available, default_sandbox=sandbox.default)


def validate(data: Any, sandbox: SandboxView, *, param_prefix: str = "") -> WorkflowSpec:
    return validate_spec(data, param_prefix=param_prefix, available_sandboxes=sandbox.available,
                         default_sandbox=sandbox.default)


def load_spec(stored: dict[str, Any]) -> WorkflowSpec:
    """A spec read back from the database (already validated when it was stored)."""
    return WorkflowSpec.model_validate(stored)


def resolve_models(spec: WorkflowSpec, settings: Settings, inline_keys: dict[str, str]) -> dict[str, ModelConfig]:
    """The spec's models with inline keys put back; a spec without models gets the server default."""
    if spec.models is None:
        return {"default": models.resolve_default_model(settings)}
    resolved: dict[str, ModelConfig] = {}
    for name, config in spec.models.items():
        key = inline_keys.get(name)
        resolved[name] = config.model_copy(update={"api_key": SecretStr(key)}) if key else config
    return resolved


async def create(session: AsyncSession, *, user_id: str, spec: WorkflowSpec) -> Workflow:
    row = Workflow(id=new_id("wf"), user_id=user_id, name=spec.name, type=spec.type, spec=redact_spec(spec))
    await WorkflowRepository(session).add(row)
    vault.keep(row.id, spec)
    return row


async def create_or_reuse(session: AsyncSession, *, user_id: str, spec: WorkflowSpec,
                          candidate: Workflow | None) -> Workflow:
    """`candidate` when it already holds exactly this spec (clients that resend their spec with every
    message would otherwise add a workflow per message), else a new workflow."""
    if candidate is not None and candidate.user_id == user_id and candidate.deleted_at is None \
            and candidate.spec == redact_spec(spec):
        vault.keep(candidate.id, spec)
        return candidate
    return await create(session, user_id=user_id, spec=spec)


async def get_or_none(session: AsyncSession, *, user_id: str, workflow_id: str) -> Workflow | None:
    return await WorkflowRepository(session).get_owned(workflow_id, user_id)


async def get_or_raise(session: AsyncSession, *, user_id: str, workflow_id: str) -> Workflow:
    row = await get_or_none(session, user_id=user_id, workflow_id=workflow_id)
    if row is None:
        raise WorkflowNotFound(f"no workflow with id '{workflow_id}'", param="workflow_id")
    return row


async def list_workflows(session: AsyncSession, *, user_id: str, page: PageQuery) -> Page[Workflow]:
    return await WorkflowRepository(session).list_owned(user_id, page)


async def update(session: AsyncSession, *, user_id: str, workflow_id: str, spec: WorkflowSpec) -> Workflow:
    row = await get_or_raise(session, user_id=user_id, workflow_id=workflow_id)
    row.name, row.type, row.spec, row.updated_at = spec.name, spec.type, redact_spec(spec), now()
    session.add(row)
    await session.flush()
    vault.keep(row.id, spec)
    return row


async def delete(session: AsyncSession, *, user_id: str, workflow_id: str) -> None:
    """Soft delete: runs and sessions that used it keep their reference."""
    row = await get_or_raise(session, user_id=user_id, workflow_id=workflow_id)
    row.deleted_at = now()
    session.add(row)
    await session.flush()
    vault.forget(row.id)


async def resolve(session: AsyncSession, *, user_id: str, workflow_id: str | None, inline: Any | None,
                  sandbox: SandboxView) -> Workflow | None:
    """The workflow a request names: an inline spec (stored as a new workflow) or an id the caller owns."""
    if inline is not None:
        spec = validate(inline, sandbox, param_prefix="workflow")
        return await create(session, user_id=user_id, spec=spec)
    if workflow_id is not None:
        return await get_or_raise(session, user_id=user_id, workflow_id=workflow_id)
    return None
