"""The database: engines for SQLite (embedded) and PostgreSQL, sessions, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import DateTime, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from exosuit.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")

# What a database that is down, locked, refusing connections or out of pooled connections
# (every one busy past the pool timeout) raises: callers answer 503.
DatabaseDown = (OperationalError, InterfaceError, PoolTimeout)

# How long a session waits for SQLite's write lock, and for a pooled connection, before its
# error: bounded, so that under load a request answers 503 rather than queueing for ever.
BUSY_TIMEOUT_SECONDS = 10.0
POOL_TIMEOUT_SECONDS = 5.0


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def async_url(url: str) -> str:
    """The async driver's URL for a configured (sync-style) URL."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def sync_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername == "sqlite+aiosqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets the web app read while the worker writes; the timeout waits out writers.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _ensure_sqlite_folder(url: str) -> None:
    """The SQLite file's folder, and the file itself created readable by this user only
    (SQLite gives its WAL and shared-memory files the same mode).

    An existing file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, so SQLite's locks of the connections already open
    would silently go (another process could then write under them: "disk I/O error",
    "database disk image is malformed")."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            with contextlib.suppress(FileExistsError):  # created meanwhile by another process
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def create_engine(
    url: str,
    *,
    busy_timeout: float = BUSY_TIMEOUT_SECONDS,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for the configured URL (SQLite gets WAL and a busy timeout); waits for
    SQLite's write lock (`busy_timeout`) and for a pooled connection (`pool_timeout`) are bounded."""
    target = async_url(url)
    _ensure_sqlite_folder(target)
    if target.startswith("sqlite"):
        engine = create_async_engine(target, pool_timeout=pool_timeout, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(round(busy_timeout * 1000)))
        return engine
    return create_async_engine(target, pool_pre_ping=True, pool_timeout=pool_timeout, **kwargs)


class Database:
    """An engine and its session factory; one per process."""

    def __init__(self, engine: AsyncEngine, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self._busy_timeout = busy_timeout
        self._writer: _Writer | None = None
        self._readers: _Readers | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(
            create_engine(url, **kwargs), busy_timeout=kwargs.get("busy_timeout", BUSY_TIMEOUT_SECONDS)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database, with the configured pool and lock waits."""
        return cls.from_url(
            settings.resolved_database_url,
            busy_timeout=settings.database_busy_timeout_seconds,
            pool_timeout=settings.database_pool_timeout_seconds,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def ping(self) -> None:
        """Raise unless the database answers and would take a write now (what readiness checks)."""
        async with self.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                # Take the write lock and let go; wait at most half a second for it.
                configured = await connection.scalar(text("PRAGMA busy_timeout"))
                await connection.exec_driver_sql("PRAGMA busy_timeout=500")
                try:
                    await connection.exec_driver_sql("BEGIN IMMEDIATE")
                    await connection.exec_driver_sql("ROLLBACK")
                finally:
                    await connection.exec_driver_sql(f"PRAGMA busy_timeout={int(configured or 0)}")
            else:
                writable = await connection.scalar(text("SELECT NOT pg_is_in_recovery()"))
                if not writable:
                    raise OperationalError("SELECT NOT pg_is_in_recovery()", {}, Exception("read-only"))

    async def write(self, work: Callable[[Session], T]) -> T:
        """`work` in a session of its own, run in the process's one writer thread: a short
        synchronous transaction with no awaits inside, so SQLite's write lock is held only
        for its statements, and this process's writes never wait on each other's locks."""
        if self._writer is None:
            self._writer = _Writer(self.engine.url.render_as_string(hide_password=False), self._busy_timeout)
        return await self._writer.run(work)

    async def read(self, work: Callable[[Session], T]) -> T:
        """`work` (reads only) in a synchronous session of its own, in one of a few reader
        threads: its statements and the loading of its rows cost one hop to a thread, where the
        async driver on SQLite takes several per statement (execute, fetch, close: most of the
        CPU of a short read). For the hot reads (a task and its steps)."""
        if self._readers is None:
            self._readers = _Readers(
                self.engine.url.render_as_string(hide_password=False), self._busy_timeout
            )
        return await self._readers.run(work)

    async def dispose(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()
        if self._readers is not None:
            readers, self._readers = self._readers, None
            await readers.close()
        await self.engine.dispose()


class _Writer:
    """One thread with a synchronous engine of its own (created in it, used only by it)."""

    def __init__(self, url: str, busy_timeout: float) -> None:
        self._url, self._busy_timeout = sync_url(url), busy_timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exosuit-writer")
        self._engine: Engine | None = None

    def _session(self) -> Session:
        if self._engine is None:
            if self._url.startswith("sqlite"):
                self._engine = create_sync_engine(self._url)
                event.listen(self._engine, "connect", _sqlite_pragmas(round(self._busy_timeout * 1000)))
            else:
                self._engine = create_sync_engine(self._url, pool_pre_ping=True, pool_size=1)
        return Session(self._engine, expire_on_commit=False)

    def _in_session(self, work: Callable[[Session], T]) -> T:
        with self._session() as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_session, work)

    async def close(self) -> None:
        def dispose() -> None:
            if self._engine is not None:
                self._engine.dispose()

        await asyncio.get_running_loop().run_in_executor(self._thread, dispose)
        self._thread.shutdown(wait=False)


class _Readers:
    """A few threads sharing a synchronous engine (a pooled connection each, at most)."""

    THREADS = 4

    def __init__(self, url: str, busy_timeout: float) -> None:
        url = sync_url(url)
        self._threads = ThreadPoolExecutor(max_workers=self.THREADS, thread_name_prefix="exosuit-reader")
        pooled: dict[str, Any] = {
            "pool_size": self.THREADS,
            "max_overflow": 0,
            "pool_timeout": POOL_TIMEOUT_SECONDS,
        }
        if url.startswith("sqlite"):
            self._engine = create_sync_engine(url, **pooled)
            event.listen(self._engine, "connect", _sqlite_pragmas(round(busy_timeout * 1000)))
        else:
            self._engine = create_sync_engine(url, pool_pre_ping=True, **pooled)

    def _in_session(self, work: Callable[[Session], T]) -> T:
        with Session(self._engine, expire_on_commit=False) as session:
            return work(session)

    async def run(self, work: Callable[[Session], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._in_session, work)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._threads, self._engine.dispose)
        self._threads.shutdown(wait=False)


def migrate(url: str) -> list[str]:
    """Bring the schema up to date with Alembic, under the schema's lock (run on every start,
    and by `exosuit db upgrade`); the revisions this call applied (none: already at head)."""
    from alembic import command

    from exosuit.storage import schema

    _ensure_sqlite_folder(url)
    if schema.at_head(url):  # the usual start: no lock taken, nothing written
        return []
    config = alembic_config(url)
    command.upgrade(config, "head")
    applied: list[str] = config.attributes["applied"]
    return applied


def alembic_config(url: str) -> Any:
    """Alembic's configuration for this database (no ini file: the URL is given)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = sync_url(url)
    config.attributes["applied"] = []
    return config
