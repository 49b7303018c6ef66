"""SQLAlchemy Core tables; portable between SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

entities = Table(
    "entities",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=True),
    Column("status", String(12), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_updated_at", BigInteger, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("finished_at", BigInteger, nullable=True),
    Column("compute_time", BigInteger, nullable=True),
    Column("created_by", Text, nullable=False),
    Column("message", Text, nullable=True),
    Column("data_uri", Text, nullable=True),
    Column("datasource_id", String(64), nullable=True),
    Column("model_id", String(64), nullable=True),
    Column("model_type", String(12), nullable=True),
    Column("endpoint_status", String(10), nullable=True),
    Column("endpoint_created_at", BigInteger, nullable=True),
    Column("request", JSON, nullable=False),
    Column("info", JSON, nullable=False),
    Index("ix_entities_kind_created", "kind", "created_at"),
    Index("ix_entities_kind_status", "kind", "status"),
)

tags = Table(
    "tags",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", String(256), nullable=True),
    Column("position", Integer, nullable=False),
)

# Facts about the store itself (key -> value), e.g. the layout its records are in
meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# The server processes (front ends) sharing this store, each seen at its last heartbeat
front_ends = Table(
    "front_ends",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("process_start", BigInteger, nullable=True),  # the process's start (clock ticks since boot)
    Column("runs_jobs", Boolean, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
)

# The run of each INPROGRESS job: its front end, its claim's token, until when (renewed by heartbeats)
job_leases = Table(
    "job_leases",
    metadata,
    Column("kind", String(20), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("token", String(32), nullable=False, unique=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_job_leases_owner", "owner"),
)
