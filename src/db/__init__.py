"""Persistence: the engine, the tables and the repositories. Nothing else touches SQL."""

from autobots.db.engine import Database, database_kind, redacted_url
from autobots.db.migrate import upgrade as migrate_to_head

__all__ = ["Database", "database_kind", "migrate_to_head", "redacted_url"]
