"""An in-process cache of sessions' messages, rendered as JSON (`schemas.message_json`), for the hot read path.

The database stays the record. A session's entry is invalidated once a commit that touched its messages is
durable, never before: a reader that read the old rows meanwhile would put them back. Who knows what a commit
touched tells it: the ORM rows a unit of work flushed (messages; a deleted session is forgotten) are seen by
the listeners below, a unit of work's bulk statements are registered by the service that issues them
(`invalidate_on_commit`), and the run journal, whose writes bypass the ORM, invalidates after its own commits.
A reader stores what it read only if no invalidation happened meanwhile (a version per session), so a slow
reader never puts back data older than a commit. Only for a database that this process alone writes to
(SQLite, the embedded default) — its run workers forward their invalidations (`listeners`); with PostgreSQL,
where other servers may write, it is off.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from autobots.db.tables import ChatSession, Message
from sqlalchemy import event
from sqlalchemy.orm import Session

MAX_SESSIONS = 512
MAX_MESSAGES = 2000
_DIRTY = "autobots_dirty_message_sessions"
_DELETED = "autobots_deleted_sessions"


@dataclass(frozen=True)
class CachedMessage:
    pk: int
    id: str
    json: str


class MessageCache:
    def __init__(self) -> None:
        self.enabled = False
        self._versions: dict[str, int] = {}
        self._entries: OrderedDict[str, list[CachedMessage]] = OrderedDict()
        self._owners: dict[str, str] = {}
        # Told of every invalidation, enabled or not: a run worker forwards them to its API process.
        self.listeners: list[Callable[[str], None]] = []

    def owner(self, session_id: str) -> str | None:
        """Who owns the session, if known here (ownership never changes; a deleted session is forgotten)."""
        return self._owners.get(session_id) if self.enabled else None

    def remember_owner(self, session_id: str, user_id: str) -> None:
        if self.enabled:
            if len(self._owners) > 100_000:
                self._owners.clear()
            self._owners[session_id] = user_id

    def version(self, session_id: str) -> int:
        return self._versions.get(session_id, 0)

    def get(self, session_id: str) -> list[CachedMessage] | None:
        if not self.enabled:
            return None
        entry = self._entries.get(session_id)
        if entry is not None:
            self._entries.move_to_end(session_id)
        return entry

    def put(self, session_id: str, version: int, messages: list[CachedMessage]) -> None:
        """Keep `messages` (oldest first) unless the session changed since `version` was read."""
        if not self.enabled or self.version(session_id) != version or len(messages) > MAX_MESSAGES:
            return
        self._entries[session_id] = messages
        self._entries.move_to_end(session_id)
        while len(self._entries) > MAX_SESSIONS:
            self._entries.popitem(last=False)

    def invalidate(self, session_id: str) -> None:
        self._versions[session_id] = self.version(session_id) + 1
        self._entries.pop(session_id, None)
        for listener in self.listeners:
            listener(session_id)

    def forget_session(self, session_id: str) -> None:
        self.invalidate(session_id)
        self._owners.pop(session_id, None)


message_cache = MessageCache()


def invalidate_on_commit(session: Any, session_id: str) -> None:
    """Register a change of a session's messages that the ORM does not see (a bulk statement), for invalidation
    once `session` (an ORM session, sync or async) commits."""
    sync_session = getattr(session, "sync_session", session)
    sync_session.info.setdefault(_DIRTY, set()).add(session_id)


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Message):
            session.info.setdefault(_DIRTY, set()).add(row.session_id)
    for row in session.deleted:
        if isinstance(row, ChatSession):
            session.info.setdefault(_DELETED, set()).add(row.id)


@event.listens_for(Session, "after_commit")
def _invalidate(session: Session) -> None:
    for session_id in session.info.pop(_DIRTY, ()):
        message_cache.invalidate(session_id)
    for session_id in session.info.pop(_DELETED, ()):
        message_cache.forget_session(session_id)


@event.listens_for(Session, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_DIRTY, None)
    session.info.pop(_DELETED, None)
