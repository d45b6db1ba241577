"""Claims on open gates: who is working on which, written beside the workflow.

A claim changes the task's row (`gate_claimed_by`, `gate_claim_expires_at`) and, when the
holder changes, appends a sealed `gate.claimed` / `gate.released` event to the task's chain,
in one transaction that holds the task's row: the workflow's own records follow those events
(`exosuit.storage.events` accepts sealed side events after the head a workflow names).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session

from exosuit.domain import claims
from exosuit.domain.refusals import NotOpen
from exosuit.domain.task import EventAction
from exosuit.storage.db import Database, utcnow
from exosuit.storage.events import append_side_event
from exosuit.storage.tables import Task, table_of

_TASK = table_of(Task)
_t = _TASK.c


class GateClaims:
    def __init__(self, db: Database, seal_key: bytes, lease: timedelta = claims.DEFAULT_CLAIM_LEASE) -> None:
        self.db = db
        self._key = seal_key
        self.lease = lease

    async def claim(
        self,
        task_id: str,
        gate_id: str,
        *,
        caller: str,
        assignee: str | None,
        take_over: bool,
        via: str | None,
    ) -> None:
        """Claim the open gate for `caller` (or assign it to `assignee`): `Claimed` if someone else
        holds it and `take_over` is false, `NotOpen` if the gate is not the open one."""

        def work(session: Session) -> None:
            conn = session.connection()
            row = _open_gate(conn, task_id, gate_id)
            now = utcnow()
            current = claims.holder(row["gate_claimed_by"], row["gate_claim_expires_at"], now)
            change = claims.claim(
                current=current,
                caller=caller,
                assignee=assignee,
                take_over=take_over,
                now=now,
                lease=self.lease,
            )
            conn.execute(
                update(_TASK)
                .where(_t.id == task_id)
                .values(
                    gate_claimed_by=change.holder, gate_claim_expires_at=change.expires_at, updated_at=now
                )
            )
            if not change.renewal:
                data: dict[str, Any] = {
                    "gate_id": gate_id,
                    "holder": change.holder,
                    "previous": change.previous,
                }
                data |= {"take_over": True} if change.previous and take_over else {}
                data |= {"token": via} if via else {}
                append_side_event(conn, task_id, f"user:{caller}", EventAction.GATE_CLAIMED, data, self._key)
            session.commit()

        await self.db.write(work)

    async def release(self, task_id: str, gate_id: str, *, caller: str, via: str | None) -> None:
        """Let the caller's claim go (nothing to do when nobody holds the gate)."""

        def work(session: Session) -> None:
            conn = session.connection()
            row = _open_gate(conn, task_id, gate_id)
            now = utcnow()
            current = claims.holder(row["gate_claimed_by"], row["gate_claim_expires_at"], now)
            refusal = claims.release_refusal(current=current, caller=caller)
            if refusal is not None:
                raise refusal
            conn.execute(
                update(_TASK)
                .where(_t.id == task_id)
                .values(gate_claimed_by=None, gate_claim_expires_at=None, updated_at=now)
            )
            if current is not None:
                data: dict[str, Any] = {"gate_id": gate_id, "previous": current} | (
                    {"token": via} if via else {}
                )
                append_side_event(conn, task_id, f"user:{caller}", EventAction.GATE_RELEASED, data, self._key)
            session.commit()

        await self.db.write(work)


def _open_gate(conn: Any, task_id: str, gate_id: str) -> Any:
    """The task's row, locked, if `gate_id` is its open gate; else `NotOpen`."""
    row = conn.execute(
        select(_t.gate_id, _t.gate_claimed_by, _t.gate_claim_expires_at)
        .where(_t.id == task_id)
        .with_for_update()
    ).first()
    if row is None or row.gate_id != gate_id:
        raise NotOpen(f"gate {gate_id} is not open")
    return row._mapping
