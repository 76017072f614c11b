"""Workflow CRUD and spec handling. Services never commit: the caller's unit of work does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autobots import models
from autobots.config import Settings
from autobots.db.repositories import Page, PageQuery, WorkflowRepository
from autobots.db.tables import Workflow, new_id, now
from autobots.errors import InvalidWorkflowSpec, NotFound
from autobots.models.schemas import ModelConfig
from autobots.workflows import modules
from autobots.workflows.schemas import ModuleSpec, WorkflowSpec
from autobots.workflows.secrets import ModelSecrets, redact_spec, vault
from autobots.workflows.validation import check_spec
from pydantic import SecretStr
from sqlmodel.ext.asyncio.session import AsyncSession


class WorkflowNotFound(NotFound):
    code = "workflow_not_found"


@dataclass(frozen=True)
class ServerRules:
    """What validation needs to know about this server: which sandboxes may run code, and what a spec's
    models may name (`models.ModelAccess`)."""

    sandboxes: frozenset[str]
    default_sandbox: str | None
    models: models.ModelAccess


async def check(data: Any, rules: ServerRules, *, library: Mapping[str, ModuleSpec] | None = None,
                ) -> tuple[WorkflowSpec | None, list[dict[str, str]]]:
    """Every problem of `data` as a spec on this server (and, for a pipeline, with the user's `library` of
    prompt modules); a base_url's host is resolved off the event loop."""
    spec, errors = check_spec(data, available_sandboxes=rules.sandboxes, default_sandbox=rules.default_sandbox,
                              access=rules.models, library=library)
    if spec is not None:
        errors = await rules.models.address_errors(spec.models)
    return (None if errors else spec), errors


async def validate(data: Any, rules: ServerRules, *, param_prefix: str = "",
                   library: Mapping[str, ModuleSpec] | None = None) -> WorkflowSpec:
    """Like `check`, but raises `InvalidWorkflowSpec` listing every error (params under `param_prefix`)."""
    spec, errors = await check(data, rules, library=library)
    if spec is None:
        raise InvalidWorkflowSpec(errors, param_prefix=param_prefix)
    return spec


async def library_for(db: AsyncSession, *, user_id: str, document: Any) -> Mapping[str, ModuleSpec]:
    """The user's prompt modules when `document` is a pipeline spec (only pipelines name them), else none."""
    if isinstance(document, dict) and document.get("type") == "pipeline":
        return await modules.library(db, user_id=user_id)
    return {}


async def spec_of(db: AsyncSession, *, run: Any) -> WorkflowSpec | None:
    """The spec of the workflow a run used (deleted workflows included: the run keeps its reference)."""
    if run.workflow_id is None:
        return None
    row = await WorkflowRepository(db).get(run.workflow_id)
    return load_spec(row.spec) if row is not None and row.user_id == run.user_id else None


def load_spec(stored: dict[str, Any]) -> WorkflowSpec:
    """A spec read back from the database (already validated when it was stored)."""
    return WorkflowSpec.model_validate(stored)


def resolve_models(spec: WorkflowSpec, settings: Settings, secrets: ModelSecrets) -> dict[str, ModelConfig]:
    """The spec's models as a run uses them: credentials put back from the vault, endpoint references replaced
    by the operator's entries; a spec without models gets the server default."""
    access = models.ModelAccess.from_settings(settings)
    if spec.models is None:
        return {"default": access.default}
    resolved: dict[str, ModelConfig] = {}
    for name, config in spec.models.items():
        held = secrets.get(name, {})
        update: dict[str, Any] = {}
        if "api_key" in held:
            update["api_key"] = SecretStr(held["api_key"])
        if "base_url" in held:
            update["base_url"] = held["base_url"]
        resolved[name] = access.resolve(config.model_copy(update=update) if update else config)
    return resolved


async def create(db: AsyncSession, *, user_id: str, spec: WorkflowSpec) -> Workflow:
    row = Workflow(id=new_id("wf"), user_id=user_id, name=spec.name, type=spec.type, spec=redact_spec(spec))
    await WorkflowRepository(db).add(row)
    vault.keep(row.id, spec)
    return row


async def create_or_reuse(db: AsyncSession, *, user_id: str, spec: WorkflowSpec,
                          candidate: Workflow | None) -> Workflow:
    """`candidate` when it already holds exactly this spec (clients that resend their spec with every
    message would otherwise add a workflow per message), else a new workflow."""
    if candidate is not None and candidate.user_id == user_id and candidate.deleted_at is None\
            and candidate.spec == redact_spec(spec):
        vault.keep(candidate.id, spec)
        return candidate
    return await create(db, user_id=user_id, spec=spec)


async def get_or_none(db: AsyncSession, *, user_id: str, workflow_id: str) -> Workflow | None:
    return await WorkflowRepository(db).get_owned(workflow_id, user_id)


async def list_by_ids(db: AsyncSession, *, user_id: str, workflow_ids: set[str]) -> dict[str, Workflow]:
    """The user's workflows among `workflow_ids` (deleted ones and others' left out), by id, in one query."""
    if not workflow_ids:
        return {}
    return {row.id: row for row in await WorkflowRepository(db).get_owned_many(workflow_ids, user_id)}


async def get_or_raise(db: AsyncSession, *, user_id: str, workflow_id: str) -> Workflow:
    row = await get_or_none(db, user_id=user_id, workflow_id=workflow_id)
    if row is None:
        raise WorkflowNotFound(f"no workflow with id '{workflow_id}'", param="workflow_id")
    return row


async def list_workflows(db: AsyncSession, *, user_id: str, page: PageQuery) -> Page[Workflow]:
    return await WorkflowRepository(db).list_owned(user_id, page)


async def update(db: AsyncSession, *, user_id: str, workflow_id: str, spec: WorkflowSpec) -> Workflow:
    row = await get_or_raise(db, user_id=user_id, workflow_id=workflow_id)
    row.name, row.type, row.spec, row.updated_at = spec.name, spec.type, redact_spec(spec), now()
    db.add(row)
    await db.flush()
    vault.keep(row.id, spec)
    return row


async def delete(db: AsyncSession, *, user_id: str, workflow_id: str) -> None:
    """Soft delete: runs and sessions that used it keep their reference."""
    row = await get_or_raise(db, user_id=user_id, workflow_id=workflow_id)
    row.deleted_at = now()
    db.add(row)
    await db.flush()
    vault.forget(row.id)


async def resolve(db: AsyncSession, *, user_id: str, workflow_id: str | None, inline: Any | None,
                  rules: ServerRules) -> Workflow | None:
    """The workflow a request names: an inline spec (stored as a new workflow) or an id the caller owns."""
    if inline is not None:
        library = await library_for(db, user_id=user_id, document=inline)
        spec = await validate(inline, rules, param_prefix="workflow", library=library)
        return await create(db, user_id=user_id, spec=spec)
    if workflow_id is not None:
        return await get_or_raise(db, user_id=user_id, workflow_id=workflow_id)
    return None
