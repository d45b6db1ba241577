"""The tamper-evident audit chain: the contract's hash, computed and verified."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
SYSTEM_ACTOR = "system"  # the actor of what neither a person nor a model did (deadlines, tools)


def canonical_json(obj: Any) -> str:
    """The contract's canonical form: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_at(moment: datetime) -> str:
    """The one string form of an event's time: ISO-8601 UTC with microseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, seq: int, at: str, actor: str, action: str, data: Any) -> str:
    body = canonical_json({"seq": seq, "at": at, "actor": actor, "action": action, "data": data})
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass(frozen=True)
class ChainEvent:
    seq: int
    at: str
    actor: str
    action: str
    data: Any
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """What verifying a chain found."""

    ok: bool
    events: int
    first_bad_seq: int | None


def verify_chain(events: Iterable[ChainEvent]) -> ChainCheck:
    """Recompute every link; the first event whose seq, link or hash is off is reported."""
    chain = list(events)
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(chain, start=1):
        recomputed = event_hash(prev, event.seq, event.at, event.actor, event.action, event.data)
        if event.seq != expected_seq or event.prev_hash != prev or event.hash != recomputed:
            return ChainCheck(ok=False, events=len(chain), first_bad_seq=event.seq)
        prev = event.hash
    return ChainCheck(ok=True, events=len(chain), first_bad_seq=None)
