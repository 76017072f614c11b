"""/api/v1/workflows: create, list, read, replace, delete, validate."""

from __future__ import annotations

from typing import Annotated, Any

from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, Pagination, ServicesDep
from autobots.web.routers._body import SPEC_BODY_OPENAPI, read_spec_document
from autobots.web.schemas import ErrorBody, ListOf, ValidationResult, WorkflowOut, list_of, workflow_out
from autobots.workflows import service as workflow_service
from fastapi import APIRouter, Depends, Response

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])
SpecDocument = Annotated[Any, Depends(read_spec_document)]
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such workflow (or not yours)"}}
INVALID = {422: {"model": ErrorBody, "description": "The spec is invalid; `error.errors` lists every problem"},
           400: {"model": ErrorBody, "description": "The body is not valid JSON/YAML"}}


@router.post("", status_code=201, response_model=WorkflowOut, responses=INVALID, openapi_extra=SPEC_BODY_OPENAPI)
async def create_workflow(document: SpecDocument, user: CurrentUser, db: DbSession,
                          services: ServicesDep) -> dict[str, Any]:
    """Store a validated workflow spec (inline API keys are redacted)."""
    library = await workflow_service.library_for(db, user_id=user.id, document=document)
    spec = await workflow_service.validate(document, services.spec_rules(), library=library)
    return workflow_out(await workflow_service.create(db, user_id=user.id, spec=spec))


@router.post("/validate", response_model=ValidationResult, responses=INVALID, openapi_extra=SPEC_BODY_OPENAPI)
async def validate_workflow(document: SpecDocument, user: CurrentUser, db: DbSession,
                            services: ServicesDep) -> dict[str, Any]:
    """Check a spec without storing it: 200 with every error found."""
    library = await workflow_service.library_for(db, user_id=user.id, document=document)
    spec, errors = await workflow_service.check(document, services.spec_rules(), library=library)
    return {"valid": spec is not None, "errors": errors}


@router.get("", response_model=ListOf[WorkflowOut])
async def list_workflows(user: CurrentUser, db: DbSession, page: Pagination) -> dict[str, Any]:
    """The caller's workflows."""
    return list_of(await workflow_service.list_workflows(db, user_id=user.id, page=page), workflow_out)


@router.get("/{workflow_id}", response_model=WorkflowOut, responses=NOT_FOUND)
async def get_workflow(workflow_id: str, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """One workflow."""
    return workflow_out(await workflow_service.get_or_raise(db, user_id=user.id, workflow_id=workflow_id))


@router.put("/{workflow_id}", response_model=WorkflowOut, responses={**NOT_FOUND, **INVALID},
            openapi_extra=SPEC_BODY_OPENAPI)
async def replace_workflow(workflow_id: str, document: SpecDocument, user: CurrentUser, db: DbSession,
                           services: ServicesDep) -> dict[str, Any]:
    """Replace a workflow's spec."""
    await workflow_service.get_or_raise(db, user_id=user.id, workflow_id=workflow_id)
    library = await workflow_service.library_for(db, user_id=user.id, document=document)
    spec = await workflow_service.validate(document, services.spec_rules(), library=library)
    return workflow_out(await workflow_service.update(db, user_id=user.id, workflow_id=workflow_id, spec=spec))


@router.delete("/{workflow_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
async def delete_workflow(workflow_id: str, user: CurrentUser, db: DbSession) -> Response:
    """Delete a workflow (sessions and runs that used it keep their history)."""
    await workflow_service.delete(db, user_id=user.id, workflow_id=workflow_id)
    return Response(status_code=204)
