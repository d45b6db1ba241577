"""Alembic environment: the URL comes from Exosuit's settings, never from an ini file.

Migrations run under a database-wide lock, so that replicas starting together on an empty
database migrate it once: the first takes the lock and migrates, the others wait, then find
the schema at head and do nothing. PostgreSQL: a transaction-level advisory lock; SQLite:
its write lock (`BEGIN IMMEDIATE`). Everything runs in that one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo
from sqlalchemy import Connection, create_engine, pool, text
from sqlmodel import SQLModel

import exosuit.storage.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

MIGRATION_LOCK_CLASS = 0x6578_6F30  # "exo0"; the second key is the schema's (tests run many at once)

config = context.config
url = config.attributes.get("url")
if url is None:  # the `alembic` command itself (alembic.ini): the database Exosuit is configured for
    from exosuit.settings import Settings
    from exosuit.storage.db import sync_url

    url = sync_url(Settings().resolved_database_url)
applied: list[str] = config.attributes.setdefault("applied", [])


def take_migration_lock(connection: Connection) -> None:
    """Begin the migrations' transaction holding the schema's lock (released at its end)."""
    if connection.dialect.name == "postgresql":
        lock = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(current_schema()))")
        connection.execute(lock, {"lock_class": MIGRATION_LOCK_CLASS})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def record(
    ctx: MigrationContext, step: MigrationInfo, heads: Collection[Any], run_args: Mapping[str, Any]
) -> None:
    """Each revision this run applied (`exosuit db upgrade` says which; a test counts them)."""
    applied.extend(step.up_revision_ids)


connectable = create_engine(url, poolclass=pool.NullPool)
with connectable.connect() as connection:
    take_migration_lock(connection)  # Alembic then reads the revision: another may have migrated
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        on_version_apply=record,
    )
    with context.begin_transaction():  # inside ours: Alembic leaves it to us to commit
        context.run_migrations()
    connection.commit()
connectable.dispose()
