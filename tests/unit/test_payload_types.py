"""Payloads decode into the same dataclasses as with Temporal's default converter, with each
class's type hints resolved once rather than on every decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from temporalio.converter import DefaultPayloadConverter

from exosuit.domain.audit import Anchor
from exosuit.domain.contracts import Decision
from exosuit.payload_types import ExosuitPayloadConverter, fields_of


class Kind(StrEnum):
    LLM = "llm"
    TOOL = "tool"


@dataclass
class Stage:
    id: str
    kind: Kind
    args_sha256: str | None = None


@dataclass
class Carried:
    """Shaped like a continued task's input: nested dataclasses, a list, an optional, enums."""

    task_id: str
    stages: list[Stage]
    head: Anchor | None
    labels: dict[str, int] = field(default_factory=dict)
    seen: int = field(default=0, init=False)


def a_carried_value() -> Carried:
    stages = [
        Stage(f"s{i}", Kind.LLM if i % 2 else Kind.TOOL, "ab" * 32 if i % 2 else None) for i in range(5)
    ]
    carried = Carried("t_1", stages, Anchor(11, "cd" * 32), {"revisions": 2})
    carried.seen = 3
    return carried


A_DECISION = {"gate_id": "g_1", "action": "approve", "actor": "ana@example.com", "role": "approver"}


def round_trip(value: Any, hint: type) -> Any:
    payloads = DefaultPayloadConverter().to_payloads([value])
    return ExosuitPayloadConverter().from_payloads(payloads, [hint])[0]


def test_nested_dataclasses_decode_as_with_the_default_converter() -> None:
    payloads = DefaultPayloadConverter().to_payloads([a_carried_value()])
    ours = ExosuitPayloadConverter().from_payloads(payloads, [Carried])[0]
    default = DefaultPayloadConverter().from_payloads(payloads, [Carried])[0]
    assert ours == default == a_carried_value()
    assert ours.seen == 3  # an init=False field comes back too
    assert isinstance(ours.stages[0].kind, Kind) and isinstance(ours.head, Anchor)


def test_a_decision_decodes_as_with_the_default_converter() -> None:
    payloads = DefaultPayloadConverter().to_payloads([A_DECISION])
    ours = ExosuitPayloadConverter().from_payloads(payloads, [Decision])[0]
    assert ours == DefaultPayloadConverter().from_payloads(payloads, [Decision])[0]


def test_unknown_keys_are_ignored_and_a_missing_required_field_is_refused() -> None:
    assert round_trip(A_DECISION | {"from_a_newer_version": 1}, Decision) == round_trip(A_DECISION, Decision)
    with pytest.raises(Exception, match="gate_id"):
        round_trip({k: v for k, v in A_DECISION.items() if k != "gate_id"}, Decision)


def test_a_class_s_hints_are_resolved_once() -> None:
    assert fields_of(Carried) is fields_of(Carried)
    assert {f.name: f.hint for f in fields_of(Anchor)} == {"seq": int, "hash": str}
