"""The administration audit: what people did outside any task, one hash chain of its own.

Accepting or dismissing an autonomy suggestion and exporting decisions are recorded here,
hashed exactly as a task's events are (`event_hash`), each in the transaction of what it
records.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import col
from sqlmodel import select as select_model

from exosuit.domain.audit import GENESIS_HASH, event_hash, format_at
from exosuit.storage.db import Database, utcnow
from exosuit.storage.tables import AdminEvent, table_of

_EVENT = table_of(AdminEvent)
_HEAD = select(_EVENT.c.seq, _EVENT.c.hash).order_by(_EVENT.c.seq.desc()).limit(1)


def append(conn: Connection, actor: str, action: str, team: str | None, data: dict[str, Any]) -> int:
    """The next event of the chain, in the caller's transaction; its seq. (Two processes
    appending at once: one fails on the unique seq and its caller's transaction retries.)"""
    head = conn.execute(_HEAD).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS_HASH)
    at = format_at(utcnow())
    digest = event_hash(prev, seq, at, actor, action, data)
    row = {"seq": seq, "at": at, "actor": actor, "action": action, "team": team, "data": data}
    conn.execute(insert(_EVENT), row | {"prev_hash": prev, "hash": digest})
    return seq


async def events(db: Database, action: str | None = None) -> list[AdminEvent]:
    """The chain in order (of one action)."""
    query = select_model(AdminEvent).order_by(col(AdminEvent.seq))
    if action:
        query = query.where(AdminEvent.action == action)
    async with db.session() as session:
        return list(await session.exec(query))


def verify(chain: list[AdminEvent]) -> int | None:
    """The first seq whose hash does not follow from the events before it, or None."""
    prev = GENESIS_HASH
    for event in chain:
        if event.prev_hash != prev or event.hash != event_hash(
            prev, event.seq, event.at, event.actor, event.action, event.data
        ):
            return event.seq
        prev = event.hash
    return None
