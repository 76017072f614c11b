"""/api/v1/messages/{id}: delete one message."""

from __future__ import annotations

from autobots.sessions import service as session_service
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession
from autobots.web.schemas import ErrorBody
from fastapi import APIRouter, Response

router = APIRouter(prefix="/api/v1/messages", tags=["sessions"])


@router.delete("/{message_id}", status_code=204, response_class=Response,
               responses={404: {"model": ErrorBody, "description": "No such message (or not yours)"}})
async def delete_message(message_id: str, user: CurrentUser, db: DbSession) -> Response:
    """Delete one message from its session."""
    message = await session_service.get_message_or_raise(db, user_id=user.id, message_id=message_id)
    await session_service.delete_message(db, message=message)
    return Response(status_code=204)
