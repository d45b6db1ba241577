"""The audit hash as docs/audit.md defines it, and verification catching tampering."""

from __future__ import annotations

import hashlib
import json

from exosuit.domain.audit import GENESIS_HASH, ChainEvent, event_hash, verify_chain


def contract_hash(prev: str, seq: int, at: str, actor: str, action: str, data: object) -> str:
    body = json.dumps(
        {"seq": seq, "at": at, "actor": actor, "action": action, "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256((prev + body).encode("utf-8")).hexdigest()


def build_chain(n: int) -> list[ChainEvent]:
    events, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        at, data = f"2026-01-01T00:00:0{seq}.000000Z", {"n": seq, "text": "héllo ✓"}
        digest = event_hash(prev, seq, at, "system", "step.finished", data)
        events.append(ChainEvent(seq, at, "system", "step.finished", data, prev, digest))
        prev = digest
    return events


def test_event_hash_matches_the_contract_formula() -> None:
    data = {"b": 1, "a": ["ü", None]}
    expected = contract_hash(GENESIS_HASH, 1, "2026-01-01T00:00:00.000000Z", "user:a@x", "x", data)
    assert event_hash(GENESIS_HASH, 1, "2026-01-01T00:00:00.000000Z", "user:a@x", "x", data) == expected


def test_intact_chain_verifies() -> None:
    verdict = verify_chain(build_chain(4))
    assert (verdict.ok, verdict.events, verdict.first_bad_seq) == (True, 4, None)


def test_changed_data_is_caught_at_its_seq() -> None:
    chain = build_chain(4)
    chain[2] = ChainEvent(**{**chain[2].__dict__, "data": {"n": 99}})
    verdict = verify_chain(chain)
    assert (verdict.ok, verdict.events, verdict.first_bad_seq) == (False, 4, 3)


def test_deleted_event_is_caught() -> None:
    chain = build_chain(4)
    del chain[1]
    check = verify_chain(chain)
    assert (check.ok, check.first_bad_seq, check.reason) == (False, 2, "seq 2 is missing or out of order")
