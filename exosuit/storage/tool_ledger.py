"""The exactly-once ledger of tool calls (`ToolExecution`): claimed before, settled after."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import ToolExecution

SENDING, COMPLETED, FAILED = "sending", "completed", "failed"


@dataclass(frozen=True)
class Claim:
    """What the ledger says of a key: ours to send now, or what an earlier attempt left."""

    fresh: bool  # no earlier attempt: the caller sends
    status: str
    result: str | None = None
    attempts: int = 1


class ToolLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(
        self, key: str, *, task_id: str, step_id: str, tool: str, args_sha256: str, resend: bool = False
    ) -> Claim:
        """Record the attempt before the call. A key seen before is not claimed again, except
        `resend` of one whose result is unknown (a person approved sending it again)."""
        async with self._db.session() as session:
            found = (await session.exec(select(ToolExecution).where(ToolExecution.key == key))).first()
            if found is None:
                session.add(
                    ToolExecution(
                        key=key, task_id=task_id, step_id=step_id, tool=tool, args_sha256=args_sha256
                    )
                )
                try:
                    await session.commit()
                except IntegrityError:  # a parallel attempt claimed it first: not ours
                    return Claim(False, SENDING)
                return Claim(True, SENDING)
            if resend and found.status == SENDING:
                found.attempts += 1
                session.add(found)
                await session.commit()
                return Claim(True, SENDING, attempts=found.attempts)
            return Claim(False, found.status, found.result, found.attempts)

    async def settle(self, key: str, status: str, result: str) -> None:
        """Record the call's result after it."""
        async with self._db.session() as session:
            found = (await session.exec(select(ToolExecution).where(ToolExecution.key == key))).first()
            if found is None:
                return
            found.status, found.result, found.finished_at = status, result, utcnow()
            session.add(found)
            await session.commit()

    async def executions(self, task_id: str) -> list[ToolExecution]:
        async with self._db.session() as session:
            rows = await session.exec(select(ToolExecution).where(ToolExecution.task_id == task_id))
            return list(rows)

    async def release(self, key: str) -> None:
        """Forget an attempt that provably sent nothing (no connection was made)."""
        async with self._db.session() as session:
            found = (await session.exec(select(ToolExecution).where(ToolExecution.key == key))).first()
            if found is not None and found.status == SENDING:
                if found.attempts > 1:
                    found.attempts -= 1
                    session.add(found)
                else:
                    await session.delete(found)
                await session.commit()
