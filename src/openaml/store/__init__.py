"""Metadata store: entities, tags and their queries on SQLAlchemy (SQLite by default, PostgreSQL by URL)."""

from openaml.store.database import Store, open_store
from openaml.store.records import EntityKind, EntityRecord, Status

__all__ = ["EntityKind", "EntityRecord", "Status", "Store", "open_store"]
