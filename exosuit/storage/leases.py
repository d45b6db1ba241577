"""Which web process reports the database-wide metrics: one at a time, across replicas.

Every web replica could count tasks and gates in the database at each scrape, but then
`sum(exosuit_tasks)` over two replicas would say twice the truth. So one process reports
them: the one holding a PostgreSQL session advisory lock on a connection of its own. When
it goes (stopped, crashed, cut off), its session ends, the lock is free, and the next
replica scraped takes it. SQLite is one machine's database: its one process reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from exosuit.storage.db import Database, DatabaseDown

log = logging.getLogger(__name__)
# Two-key advisory locks: this class of lock, and the schema (tests run many side by side).
REPORTER_LOCK_CLASS = 0x6578_6F31  # "exo1"
_TRY = text("SELECT pg_try_advisory_lock(:lock_class, hashtext(current_schema()))")
_FREE = text("SELECT pg_advisory_unlock(:lock_class, hashtext(current_schema()))")


class ReporterLease:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._connection: AsyncConnection | None = None
        self._held = False
        self._one_at_a_time = asyncio.Lock()

    async def held(self) -> bool:
        """Whether this process reports now: takes the lease if it is free."""
        if self._db.engine.dialect.name != "postgresql":
            return True
        async with self._one_at_a_time:  # two scrapes at once share the one connection
            try:
                await self._renew()
            except DatabaseDown:
                await self.release()
            return self._held

    async def _renew(self) -> None:
        if self._connection is None:
            self._connection = await self._db.engine.connect()
        if self._held:  # still ours while its session lives: a broken one raises here
            await self._connection.execute(text("SELECT 1"))
        else:
            taken = await self._connection.execute(_TRY, {"lock_class": REPORTER_LOCK_CLASS})
            self._held = bool(taken.scalar())
            if self._held:
                log.info("this process now reports the database-wide metrics")
        await self._connection.commit()  # the session's lock outlives the transaction

    async def release(self) -> None:
        """Give the lease up. Closing a pooled connection only hands it back to the pool, with
        its session (and a session lock) alive: so unlock first, and if that fails, drop the
        connection from the pool so that its session ends."""
        held, self._held = self._held, False
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if held:
                await connection.execute(_FREE, {"lock_class": REPORTER_LOCK_CLASS})
                await connection.commit()
            await connection.close()
        except Exception:  # broken: its session is gone or going, and the lock with it
            with contextlib.suppress(Exception):
                await connection.invalidate()
