from __future__ import annotations

from autobots.db.repositories._base import Page, PageQuery, Repository
from autobots.db.tables import GalleryItem, GalleryTag
from sqlalchemy import delete
from sqlmodel import select


class GalleryRepository(Repository[GalleryItem]):
    model = GalleryItem

    async def add_with_tags(self, item: GalleryItem) -> GalleryItem:
        await self.add(item)
        self.db.add_all([GalleryTag(gallery_id=item.id, tag=tag) for tag in item.tags])
        await self.db.flush()
        return item

    async def list_items(self, page: PageQuery, *, tag: str | None) -> Page[GalleryItem]:
        filters = []
        if tag is not None:
            tagged = select(GalleryTag.gallery_id).where(GalleryTag.tag == tag)
            filters.append(GalleryItem.id.in_(tagged))  # type: ignore[attr-defined]
        return await self.paginate(page, filters=filters)

    async def delete_owned(self, item: GalleryItem) -> None:
        await self.db.exec(delete(GalleryTag).where(GalleryTag.gallery_id == item.id))  # type: ignore[call-overload]
        await self.delete(item)
