"""Prompt modules: named system prompts a pipeline step runs with; the built-in set and users' libraries.

A step's `module` is looked up in the spec's own `modules`, then in the user's library (`/api/v1/modules`), then
here. The built-in prompts follow the roles OrchestrAI-style pipelines use: plan, scrutinize, enhance, plan the
code, debug.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autobots.db.repositories._base import Page, PageQuery
from autobots.db.repositories.modules import ModuleRepository
from autobots.db.tables import PromptModule, new_id, now
from autobots.errors import Conflict, NotFound
from autobots.workflows.schemas import AGENT_NAME_PATTERN, ModuleSpec
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

BUILTIN_MODULES: Mapping[str, ModuleSpec] = {
    "planner": ModuleSpec(
        description="Breaks a task into a short, ordered plan.",
        system_message=(
            "You are a planner. Read the task and the inputs you are given and write a plan to accomplish it: "
            "a numbered list of at most seven concrete steps, each one sentence, in the order they must be done. "
            "Name what each step needs and produces. Do not carry the plan out; end with the plan.")),
    "scrutinizer": ModuleSpec(
        description="Reviews work critically against the task and lists what is wrong or missing.",
        system_message=(
            "You are a scrutinizer. Review the work in your inputs against the task. List every error, gap, "
            "unclear point and unjustified assumption, most serious first, each with the fix you propose. If the "
            "work fully meets the task, say so plainly and say why. Be specific; do not rewrite the work.")),
    "enhancer": ModuleSpec(
        description="Improves a piece of work using the review and task it is given.",
        system_message=(
            "You are an enhancer. Rewrite the work in your inputs so that it meets the task better, applying every "
            "valid point of any review among the inputs. Keep what is already right. Answer with the improved "
            "work only, complete, not a list of changes.")),
    "code_planner": ModuleSpec(
        description="Designs the code for a task: modules, functions, data and tests, before any code is written.",
        system_message=(
            "You are a code planner. From the task and inputs, design the program before it is written: the files "
            "or functions it needs with their signatures and purpose, the data they exchange, the edge cases, and "
            "the tests that would show it works. Write no implementation code.")),
    "debugger": ModuleSpec(
        description="Finds why code fails and answers with corrected code.",
        system_message=(
            "You are a debugger. You are given code and the output of running it. Find the cause of every error "
            "in the output, explain it in one sentence each, then answer with the complete corrected code in one "
            "python code block.")),
}


class ModuleNotFound(NotFound):
    code = "module_not_found"


class ModuleNameTaken(Conflict):
    code = "module_exists"


class ModuleFields(BaseModel):
    """A module as a user creates or replaces it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=AGENT_NAME_PATTERN, description="Unique among the user's modules")
    system_message: str = Field(min_length=1, max_length=100_000)
    description: str | None = Field(None, max_length=10_000)
    model: str | None = Field(None, max_length=100, description="A key of the using spec's `models`")


async def library(db: AsyncSession, *, user_id: str) -> dict[str, ModuleSpec]:
    """The user's modules by name, as pipeline steps see them."""
    rows = await ModuleRepository(db).all_owned(user_id)
    return {row.name: ModuleSpec(system_message=row.system_message, description=row.description, model=row.model)
            for row in rows}


async def used_from_library(db: AsyncSession, *, user_id: str, spec: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The user's modules that a stored pipeline spec's steps name (the spec's own and built-in ones aside), as
    a gallery item carries them so that others can see and rerun the pipeline."""
    own = set((spec.get("modules") or {}).keys())
    named = {step.get("module") for step in (spec.get("pipeline") or {}).get("steps", [])}
    wanted = {name for name in named if name and name not in own}
    found = await library(db, user_id=user_id)
    return {name: found[name].model_dump() for name in sorted(wanted) if name in found}


async def create(db: AsyncSession, *, user_id: str, fields: ModuleFields) -> PromptModule:
    repository = ModuleRepository(db)
    if await repository.get_by_name(fields.name, user_id) is not None:
        raise ModuleNameTaken(f"you already have a module named '{fields.name}'", param="name")
    row = PromptModule(id=new_id("mod"), user_id=user_id, **fields.model_dump())
    try:
        async with db.begin_nested():
            await repository.add(row)
    except IntegrityError as err:  # the same name created at the same moment
        raise ModuleNameTaken(f"you already have a module named '{fields.name}'", param="name") from err
    return row


async def get_or_raise(db: AsyncSession, *, user_id: str, module_id: str) -> PromptModule:
    row = await ModuleRepository(db).get_owned(module_id, user_id)
    if row is None:
        raise ModuleNotFound(f"no module with id '{module_id}'", param="module_id")
    return row


async def list_modules(db: AsyncSession, *, user_id: str, page: PageQuery) -> Page[PromptModule]:
    return await ModuleRepository(db).list_owned(user_id, page)


async def update(db: AsyncSession, *, user_id: str, module_id: str, fields: ModuleFields) -> PromptModule:
    row = await get_or_raise(db, user_id=user_id, module_id=module_id)
    other = await ModuleRepository(db).get_by_name(fields.name, user_id)
    if other is not None and other.id != row.id:
        raise ModuleNameTaken(f"you already have a module named '{fields.name}'", param="name")
    for key, value in fields.model_dump().items():
        setattr(row, key, value)
    row.updated_at = now()
    db.add(row)
    await db.flush()
    return row


async def delete(db: AsyncSession, *, user_id: str, module_id: str) -> None:
    """Delete for good; pipelines that name it fail validation (or, already stored, their step) from now on."""
    await ModuleRepository(db).delete(await get_or_raise(db, user_id=user_id, module_id=module_id))
