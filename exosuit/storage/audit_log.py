"""Reading a task's audit chain, and verifying it against its anchor and the read model."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from exosuit.domain.audit import (
    Anchor,
    ChainCheck,
    ChainEvent,
    anchor_signed,
    sealed_side_event,
    sign_checkpoint,
    verify_chain,
)
from exosuit.domain.task import EventAction
from exosuit.storage.db import Database
from exosuit.storage.tables import AuditAnchor, AuditCheckpoint, AuditEvent, Task

_SUBMITTED_FIELDS = ("title", "instructions", "team")


class AuditLog:
    def __init__(self, db: Database, anchor_key: bytes | None = None) -> None:
        self.db = db
        self._anchor_key = anchor_key

    async def events(self, task_id: str) -> list[AuditEvent]:
        """A task's events in seq order."""
        async with self.db.session() as session:
            rows = await session.exec(
                select(AuditEvent).where(AuditEvent.task_id == task_id).order_by(col(AuditEvent.seq))
            )
            return list(rows)

    async def task_ids(self) -> list[str]:
        """Every task the database knows, by its row, its events or the latest checkpoint."""
        async with self.db.session() as session:
            rows = set(await session.exec(select(Task.id)))
            rows |= set(await session.exec(select(AuditEvent.task_id).distinct()))
        checkpoint = await self.latest_checkpoint()
        return sorted(rows | set(checkpoint.heads if checkpoint else ()))

    async def known(self, task_id: str, checkpoint: AuditCheckpoint | None) -> bool:
        """Whether anything records the task (its row, an event, an anchor, a checkpoint): a task
        with none of them does not exist, one with some but not all has a broken chain."""
        if checkpoint is not None and task_id in checkpoint.heads:
            return True
        async with self.db.session() as session:
            if await session.get(Task, task_id) is not None:
                return True
            if await session.get(AuditAnchor, task_id) is not None:
                return True
            found = await session.exec(select(AuditEvent.seq).where(AuditEvent.task_id == task_id).limit(1))
            return found.first() is not None

    async def checkpoint(self) -> int:
        """Sign every task's current head into one checkpoint; how many tasks it covers."""
        assert self._anchor_key is not None, "checkpoints are signed: the audit log needs the key"
        last = (
            select(AuditEvent.task_id, func.max(AuditEvent.seq).label("seq"))
            .group_by(col(AuditEvent.task_id))
            .subquery()
        )
        query = select(AuditEvent.task_id, AuditEvent.seq, AuditEvent.hash).join(
            last, (col(AuditEvent.task_id) == last.c.task_id) & (col(AuditEvent.seq) == last.c.seq)
        )
        async with self.db.session() as session:
            heads: dict[str, list[Any]] = {t: [seq, digest] for t, seq, digest in await session.exec(query)}
            signature = sign_checkpoint(self._anchor_key, heads)
            session.add(AuditCheckpoint(heads=heads, signature=signature))
            await session.commit()
        return len(heads)

    async def latest_checkpoint(self) -> AuditCheckpoint | None:
        """The newest signed checkpoint (read it once to verify many tasks against it)."""
        async with self.db.session() as session:
            found = await session.exec(
                select(AuditCheckpoint).order_by(col(AuditCheckpoint.id).desc()).limit(1)
            )
            return found.first()

    async def verify(
        self, task_id: str, live: Anchor | None = None, *, checkpoint: AuditCheckpoint | bool | None = True
    ) -> ChainCheck:
        """The chain, held against the workflow's head (`live`), the signed anchor of a finished
        task and a signed checkpoint (`True`: the latest, read now); then the task row against
        what `task.submitted` recorded."""
        events = await self.events(task_id)
        async with self.db.session() as session:
            stored = await session.get(AuditAnchor, task_id)
            task = await session.get(Task, task_id)
        anchors = [live] if live is not None else []
        if stored is not None:
            signed = Anchor(stored.seq, stored.hash)
            if self._anchor_key is None or not anchor_signed(
                self._anchor_key, task_id, signed, stored.signature
            ):
                return ChainCheck(
                    False, len(events), stored.seq, None, True, "the anchor's signature does not verify"
                )
            anchors.append(signed)
        chain = [ChainEvent(e.seq, e.at, e.actor, e.action, e.data, e.prev_hash, e.hash) for e in events]
        # A running task's workflow may not yet have followed the claims sealed after its head.
        claims = functools.partial(sealed_side_event, self._anchor_key, task_id)
        checks = [verify_chain(chain, a, claims if a is live else None) for a in anchors] or [
            verify_chain(chain)
        ]
        check = next((c for c in checks if not c.ok), checks[0])
        if check.ok:
            latest = await self.latest_checkpoint() if checkpoint is True else checkpoint or None
            check = self._against_checkpoint(task_id, chain, check, latest)
        if check.ok and task is not None and events[0].action == EventAction.TASK_SUBMITTED:
            submitted = events[0].data
            changed = [f for f in _SUBMITTED_FIELDS if f in submitted and submitted[f] != getattr(task, f)]
            if changed:
                reason = f"the task's {', '.join(changed)} no longer match what task.submitted recorded"
                return ChainCheck(False, check.events, 1, check.head, check.anchored, reason)
        return check

    def _against_checkpoint(
        self, task_id: str, chain: list[ChainEvent], check: ChainCheck, checkpoint: AuditCheckpoint | None
    ) -> ChainCheck:
        """The latest checkpoint must be signed, and its head of this task still in the chain."""
        if checkpoint is None:
            return check
        key = self._anchor_key
        if key is None or sign_checkpoint(key, checkpoint.heads) != checkpoint.signature:
            reason = "the checkpoint's signature does not verify"
            return ChainCheck(False, check.events, None, check.head, True, reason)
        if task_id not in checkpoint.heads:
            return check
        seq, digest = checkpoint.heads[task_id]
        if len(chain) < seq or chain[seq - 1].hash != digest:
            signed = f"{checkpoint.at:%Y-%m-%d %H:%M}"
            reason = f"the chain no longer holds seq {seq} as the checkpoint of {signed} signed it"
            return ChainCheck(False, check.events, min(seq, len(chain) + 1), check.head, True, reason)
        return ChainCheck(True, check.events, None, check.head, True)
