"""/api/v1/gallery: browse published sessions; the publisher may delete."""

from __future__ import annotations

from typing import Annotated, Any

from autobots.gallery import service as gallery_service
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession, Pagination
from autobots.web.schemas import ErrorBody, GalleryItemOut, ListOf, gallery_out, list_of
from fastapi import APIRouter, Query, Response

router = APIRouter(prefix="/api/v1/gallery", tags=["gallery"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such gallery item"}}


@router.get("", response_model=ListOf[GalleryItemOut])
async def list_gallery(user: CurrentUser, db: DbSession, page: Pagination,
                       tag: Annotated[str | None, Query(max_length=100)] = None) -> dict[str, Any]:
    """Published sessions, optionally with a tag."""
    return list_of(await gallery_service.list_items(db, page=page, tag=tag), gallery_out)


@router.get("/{gallery_id}", response_model=GalleryItemOut, responses=NOT_FOUND)
async def get_gallery_item(gallery_id: str, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """One published session."""
    return gallery_out(await gallery_service.get_or_raise(db, gallery_id=gallery_id))


@router.delete("/{gallery_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
async def delete_gallery_item(gallery_id: str, user: CurrentUser, db: DbSession) -> Response:
    """Unpublish (publisher only)."""
    await gallery_service.delete(db, user_id=user.id, gallery_id=gallery_id)
    return Response(status_code=204)
