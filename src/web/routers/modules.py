"""/api/v1/modules: the user's prompt modules, which pipeline steps name (API.md "Pipelines")."""

from __future__ import annotations

from typing import Any, Literal

from autobots.db.tables import PromptModule
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, Pagination
from autobots.web.schemas import ErrorBody, ListOf, list_of
from autobots.workflows import modules as module_service
from autobots.workflows.modules import ModuleFields
from fastapi import APIRouter, Response
from pydantic import BaseModel

router = APIRouter(prefix="/api/v1/modules", tags=["modules"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such module (or not yours)"}}
NAME_TAKEN = {409: {"model": ErrorBody, "description": "You already have a module of that name"}}


class ModuleOut(BaseModel):
    id: str
    object: Literal["module"] = "module"
    name: str
    system_message: str
    description: str | None
    model: str | None
    created_at: int
    updated_at: int


def module_out(row: PromptModule) -> dict[str, Any]:
    return {"id": row.id, "object": "module", "name": row.name, "system_message": row.system_message,
            "description": row.description, "model": row.model, "created_at": row.created_at,
            "updated_at": row.updated_at}


@router.post("", status_code=201, response_model=ModuleOut, responses=NAME_TAKEN)
async def create_module(body: ModuleFields, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """Add a module to the caller's library."""
    return module_out(await module_service.create(db, user_id=user.id, fields=body))


@router.get("", response_model=ListOf[ModuleOut])
async def list_modules(user: CurrentUser, db: DbSession, page: Pagination) -> dict[str, Any]:
    """The caller's modules."""
    return list_of(await module_service.list_modules(db, user_id=user.id, page=page), module_out)


@router.get("/{module_id}", response_model=ModuleOut, responses=NOT_FOUND)
async def get_module(module_id: str, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """One module."""
    return module_out(await module_service.get_or_raise(db, user_id=user.id, module_id=module_id))


@router.put("/{module_id}", response_model=ModuleOut, responses={**NOT_FOUND, **NAME_TAKEN})
async def replace_module(module_id: str, body: ModuleFields, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """Replace a module (runs that start afterwards use the new prompt)."""
    return module_out(await module_service.update(db, user_id=user.id, module_id=module_id, fields=body))


@router.delete("/{module_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
async def delete_module(module_id: str, user: CurrentUser, db: DbSession) -> Response:
    """Delete a module."""
    await module_service.delete(db, user_id=user.id, module_id=module_id)
    return Response(status_code=204)
