"""The schema's revision and the migrations' history, for `exosuit db current|history`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from exosuit.storage.db import alembic_config, sync_url


@dataclass(frozen=True)
class Revision:
    id: str
    down: str | None
    message: str
    head: bool


def history(url: str) -> list[Revision]:
    """Every migration, newest first."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    heads = set(scripts.get_heads())
    found = []
    for script in scripts.walk_revisions():
        down = script.down_revision if isinstance(script.down_revision, str) else None
        found.append(Revision(script.revision, down, script.doc or "", script.revision in heads))
    return found


def current(url: str) -> str | None:
    """The revision the database is at; None for an empty (or, SQLite, absent) database."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and not Path(str(parsed.database)).exists():
        return None  # looking never creates one
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def at_head(url: str) -> bool:
    """Whether the database is at the newest revision already."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    return current(url) == scripts.get_current_head()
