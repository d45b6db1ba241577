"""The tamper-evident audit chain: its hash (docs/audit.md), computed and verified."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
# Events the web app appends to a running task's chain beside its workflow (a gate's claims):
# sealed with the anchor key, so the workflow's head may lag behind them and nothing else.
SIDE_ACTIONS = frozenset({"gate.claimed", "gate.released"})
SYSTEM_ACTOR = "system"  # the actor of what neither a person nor a model did (deadlines, tools)


def canonical_json(obj: Any) -> str:
    """The canonical form the hash is taken over: sorted keys, no spaces, UTF-8 kept."""
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
class Anchor:
    """A chain's head as known outside the database: the workflow's state, or a signed record."""

    seq: int
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """What verifying a chain found; `reason` says why it failed."""

    ok: bool
    events: int
    first_bad_seq: int | None
    head: str | None = None  # the last event's hash
    anchored: bool = False  # the head was compared with an anchor
    reason: str | None = None


def verify_chain(
    events: Iterable[ChainEvent],
    anchor: Anchor | None = None,
    beyond_anchor: Callable[[ChainEvent], bool] | None = None,
) -> ChainCheck:
    """Recompute every link, then hold the head against the anchor when there is one.

    Fails on no events at all, the first event whose seq, link or hash is off, events
    missing after the anchored head, an anchored event that differs (a rewrite re-hashed
    consistently), and events appended after the anchored head (unless `beyond_anchor`
    accepts each of them: sealed side events a running workflow has not yet followed).
    """
    chain = list(events)
    size, head = len(chain), chain[-1].hash if chain else None

    def broken(seq: int, reason: str) -> ChainCheck:
        return ChainCheck(False, size, seq, head, anchor is not None, reason)

    if not chain:
        return broken(1, "the chain has no events")
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(chain, start=1):
        recomputed = event_hash(prev, event.seq, event.at, event.actor, event.action, event.data)
        if event.seq != expected_seq:
            return broken(expected_seq, f"seq {expected_seq} is missing or out of order")
        if event.prev_hash != prev or event.hash != recomputed:
            return broken(event.seq, f"seq {event.seq} does not hash to its link")
        prev = event.hash
    if anchor is not None:
        if size < anchor.seq:
            return broken(size + 1, f"events {size + 1} to {anchor.seq} are missing at the end")
        if chain[anchor.seq - 1].hash != anchor.hash:
            return broken(anchor.seq, f"seq {anchor.seq} differs from its anchor: the chain was rewritten")
        if size > anchor.seq and not (beyond_anchor and all(map(beyond_anchor, chain[anchor.seq :]))):
            return broken(anchor.seq + 1, f"events after the anchored head (seq {anchor.seq}) were added")
    return ChainCheck(True, size, None, head, anchor is not None)


def anchor_key(secret: str) -> bytes:
    """The key that signs anchors, derived from the root secret (never the secret itself)."""
    return hmac.new(secret.encode(), b"exosuit audit anchor v1", hashlib.sha256).digest()


def sign_anchor(key: bytes, task_id: str, anchor: Anchor) -> str:
    return hmac.new(key, f"{task_id}:{anchor.seq}:{anchor.hash}".encode(), hashlib.sha256).hexdigest()


def anchor_signed(key: bytes, task_id: str, anchor: Anchor, signature: str) -> bool:
    return hmac.compare_digest(sign_anchor(key, task_id, anchor), signature)


def sign_checkpoint(key: bytes, heads: dict[str, list[Any]]) -> str:
    """The signature of a checkpoint: every task's [seq, hash], as one canonical document."""
    return hmac.new(key, canonical_json(heads).encode(), hashlib.sha256).hexdigest()


def side_seal(key: bytes, task_id: str, event: ChainEvent) -> str:
    """The seal of a side event: an HMAC over where it stands in the chain and what it says
    (its data without the seal itself, which the data then carries as `seal`)."""
    data = {k: v for k, v in event.data.items() if k != "seal"}
    body = canonical_json([task_id, event.seq, event.prev_hash, event.at, event.actor, event.action, data])
    return hmac.new(key, b"side " + body.encode(), hashlib.sha256).hexdigest()


def sealed_side_event(key: bytes | None, task_id: str, event: ChainEvent) -> bool:
    """Whether an event is a side event the web app sealed with this key."""
    seal = event.data.get("seal") if isinstance(event.data, dict) else None
    if key is None or event.action not in SIDE_ACTIONS or not isinstance(seal, str):
        return False
    return hmac.compare_digest(side_seal(key, task_id, event), seal)
