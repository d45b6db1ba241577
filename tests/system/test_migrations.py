"""The schema the migrations build is the one exosuit/storage/tables.py declares, on SQLite
and on PostgreSQL: a migration that forgets a column, an index or a constraint fails here."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection
from sqlmodel import SQLModel

from exosuit.storage.db import Database


def differences(connection: Connection) -> list[Any]:
    # Types are compared too; server defaults are not: the migrations set some for rows
    # that existed before a column did, where the tables rely on Python defaults.
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_the_migrated_schema_is_the_declared_one(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert await connection.run_sync(differences) == []
