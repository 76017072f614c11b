"""All SQL lives here: one repository class per table, built from a session; and `ledger`, the run
ledger's hot writes as functions of a connection (run on the database's writer thread)."""

from autobots.db.repositories import ledger
from autobots.db.repositories._base import Page, PageQuery, fetch_one
from autobots.db.repositories.gallery import GalleryRepository
from autobots.db.repositories.idempotency import IdempotencyRepository
from autobots.db.repositories.messages import MessageRepository
from autobots.db.repositories.runs import ACTIVE_STATUSES, PUBLIC_ONLY, TERMINAL_STATUSES, RunRepository
from autobots.db.repositories.sessions import SessionRepository
from autobots.db.repositories.users import UserRepository
from autobots.db.repositories.workflows import WorkflowRepository

__all__ = [
    "ACTIVE_STATUSES",
    "PUBLIC_ONLY",
    "TERMINAL_STATUSES",
    "GalleryRepository",
    "IdempotencyRepository",
    "MessageRepository",
    "Page",
    "PageQuery",
    "RunRepository",
    "SessionRepository",
    "UserRepository",
    "WorkflowRepository",
    "fetch_one",
    "ledger",
]
