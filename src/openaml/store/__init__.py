"""Metadata store: entities, tags and their queries on SQLAlchemy (SQLite by default, PostgreSQL by URL)."""

from openaml.store.database import Store, open_store
from openaml.store.records import EndpointStatus, EntityKind, EntityRecord, Status

__all__ = ["EndpointStatus", "EntityKind", "EntityRecord", "Status", "Store", "open_store"]
