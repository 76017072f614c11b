"""Publish a session as a redacted snapshot; browse and delete gallery items."""

from __future__ import annotations

from autobots.db.repositories import GalleryRepository, Page, PageQuery, WorkflowRepository
from autobots.db.tables import ChatSession, GalleryItem, new_id
from autobots.errors import NotFound
from autobots.sessions import service as session_service
from autobots.sessions.schemas import message_out
from autobots.workflows import modules
from sqlmodel.ext.asyncio.session import AsyncSession

MAX_PUBLISHED_MESSAGES = 1000


class GalleryItemNotFound(NotFound):
    code = "gallery_item_not_found"


async def publish(db: AsyncSession, *, user_id: str, chat: ChatSession, tags: list[str]) -> GalleryItem:
    """Snapshot the session (workflow spec already redacted at rest) and its messages."""
    workflow = await WorkflowRepository(db).get(chat.workflow_id) if chat.workflow_id else None
    messages = await session_service.list_history(db, session_id=chat.id, limit=MAX_PUBLISHED_MESSAGES)
    snapshot = {"id": chat.id, "object": "session", "name": chat.name, "workflow_id": chat.workflow_id,
                "workflow": workflow.spec if workflow else None, "created_at": chat.created_at,
                "updated_at": chat.updated_at}
    if workflow is not None and workflow.type == "pipeline":
        snapshot["modules"] = await modules.used_from_library(db, user_id=user_id, spec=workflow.spec)
    item = GalleryItem(id=new_id("gal"), published_by=user_id, session=snapshot,
                       messages=[message_out(m) for m in messages], tags=sorted(set(tags)))
    return await GalleryRepository(db).add_with_tags(item)


async def list_items(db: AsyncSession, *, page: PageQuery, tag: str | None) -> Page[GalleryItem]:
    return await GalleryRepository(db).list_items(page, tag=tag)


async def get_or_raise(db: AsyncSession, *, gallery_id: str) -> GalleryItem:
    item = await GalleryRepository(db).get(gallery_id)
    if item is None:
        raise GalleryItemNotFound(f"no gallery item with id '{gallery_id}'", param="gallery_id")
    return item


async def delete(db: AsyncSession, *, user_id: str, gallery_id: str) -> None:
    """Only the publisher may delete; to anyone else the item does not exist."""
    item = await get_or_raise(db, gallery_id=gallery_id)
    if item.published_by != user_id:
        raise GalleryItemNotFound(f"no gallery item with id '{gallery_id}'", param="gallery_id")
    await GalleryRepository(db).delete_owned(item)
