"""Persistence: the engine, the tables, the base repository, the run ledger and the repositories of rooms without
one of their own. SQL lives here and in a room's `repository.py` (`sessions`), nowhere else."""

from autobots.db.engine import Database, database_kind, redacted_url
from autobots.db.migrate import upgrade as migrate_to_head

__all__ = ["Database", "database_kind", "migrate_to_head", "redacted_url"]
