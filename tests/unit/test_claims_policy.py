"""Claims as pure policy: the lease, take-overs, who may decide, and sealed side events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exosuit.domain import claims
from exosuit.domain.audit import (
    GENESIS_HASH,
    Anchor,
    ChainEvent,
    event_hash,
    sealed_side_event,
    side_seal,
    verify_chain,
)
from exosuit.domain.refusals import Claimed

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
KEY = b"k" * 32


def test_a_claim_lapses_when_its_lease_runs_out() -> None:
    until = NOW + timedelta(minutes=15)
    assert claims.holder("ada@example.com", until, NOW) == "ada@example.com"
    assert claims.holder("ada@example.com", until, until) is None
    assert claims.holder(None, None, NOW) is None


def test_claiming_again_renews_the_lease_without_an_audit_event() -> None:
    change = claims.claim(current="ada@x", caller="ada@x", assignee=None, take_over=False, now=NOW)
    assert change.renewal and change.previous is None
    assert change.expires_at == NOW + claims.DEFAULT_CLAIM_LEASE


def test_a_gate_held_by_someone_else_moves_only_with_take_over() -> None:
    with pytest.raises(Claimed, match="ada@x"):
        claims.claim(current="ada@x", caller="bob@x", assignee=None, take_over=False, now=NOW)
    change = claims.claim(current="ada@x", caller="bob@x", assignee=None, take_over=True, now=NOW)
    assert (change.holder, change.previous, change.renewal) == ("bob@x", "ada@x", False)


def test_a_holder_may_assign_their_gate_to_another_approver() -> None:
    change = claims.claim(current="ada@x", caller="ada@x", assignee="bob@x", take_over=False, now=NOW)
    assert (change.holder, change.previous) == ("bob@x", "ada@x")


def test_only_the_holder_may_decide_a_claimed_gate() -> None:
    assert claims.decide_refusal(current=None, actor="bob@x") is None
    assert claims.decide_refusal(current="bob@x", actor="bob@x") is None
    assert isinstance(claims.decide_refusal(current="ada@x", actor="bob@x"), Claimed)


def _at(seq: int) -> str:
    return f"2026-12-04T08:00:0{seq}.000000Z"


def _event(seq: int, prev: str, action: str, data: dict[str, object]) -> ChainEvent:
    digest = event_hash(prev, seq, _at(seq), "user:ada@x", action, data)
    return ChainEvent(seq, _at(seq), "user:ada@x", action, data, prev, digest)


def _sealed(seq: int, prev: str) -> ChainEvent:
    unsealed = ChainEvent(seq, _at(seq), "user:ada@x", "gate.claimed", {"g": 1}, prev, "")
    return _event(seq, prev, "gate.claimed", {"g": 1, "seal": side_seal(KEY, "t1", unsealed)})


def test_a_workflow_head_may_lag_only_behind_sealed_claims() -> None:
    first = _event(1, GENESIS_HASH, "task.submitted", {})
    claim = _sealed(2, first.hash)
    anchor = Anchor(1, first.hash)
    tolerated = lambda e: sealed_side_event(KEY, "t1", e)  # noqa: E731
    assert verify_chain([first, claim], anchor, tolerated).ok
    assert not verify_chain([first, claim], anchor).ok
    forged = _event(2, first.hash, "gate.claimed", {"g": 1, "seal": "0" * 64})
    assert not verify_chain([first, forged], anchor, tolerated).ok
    other = _event(2, first.hash, "gate.decided", {})
    assert not verify_chain([first, other], anchor, tolerated).ok
    assert not sealed_side_event(b"other" * 8, "t1", claim)
