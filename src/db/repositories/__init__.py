"""Repositories: the base class (owner filters, cursor pagination), one repository class per table, built from a
session; and `ledger`, the run ledger's hot writes as functions of a connection (run on the database's writer
thread). A domain room may keep its tables' repositories at home on the same base (`sessions/repository.py`)."""

from autobots.db.repositories import ledger
from autobots.db.repositories._base import Page, PageQuery, Repository, fetch_one
from autobots.db.repositories.gallery import GalleryRepository
from autobots.db.repositories.idempotency import IdempotencyRepository
from autobots.db.repositories.runs import ACTIVE_STATUSES, PUBLIC_ONLY, TERMINAL_STATUSES, RunRepository
from autobots.db.repositories.users import UserRepository
from autobots.db.repositories.workflows import WorkflowRepository

__all__ = [
    "ACTIVE_STATUSES",
    "PUBLIC_ONLY",
    "TERMINAL_STATUSES",
    "GalleryRepository",
    "IdempotencyRepository",
    "Page",
    "PageQuery",
    "Repository",
    "RunRepository",
    "UserRepository",
    "WorkflowRepository",
    "fetch_one",
    "ledger",
]
