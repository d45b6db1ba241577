"""Payloads decode into the same dataclasses as with Temporal's default converter, with each
class's type hints resolved once rather than on every decode."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.converter import DefaultPayloadConverter

from exosuit.domain.audit import Anchor
from exosuit.domain.autonomy import AutonomyLevel, Risk
from exosuit.domain.contracts import Carried, Decision, StepState, TaskInput
from exosuit.domain.decisions import DecisionAction
from exosuit.domain.task import StepKind, StepStatus
from exosuit.payload_types import ExosuitPayloadConverter, fields_of


def a_carried_task_input() -> TaskInput:
    steps = [
        StepState(f"s{i}", i, StepKind.LLM, Risk.LOW, status=StepStatus.COMPLETED, args_sha256=None)
        for i in range(5)
    ]
    carried = Carried(AutonomyLevel.SUPERVISED, steps, events=12, head=Anchor(11, "ab" * 32), planned=True)
    return TaskInput(
        "t_1", "red", "ana@example.com", AutonomyLevel.SUPERVISED, AutonomyLevel.AUTONOMOUS, 3600.0,
        carried=carried,
    )  # fmt: skip


def round_trip(value: Any, hint: type) -> Any:
    payload = DefaultPayloadConverter().to_payloads([value])
    return ExosuitPayloadConverter().from_payloads(payload, [hint])[0]


def test_nested_dataclasses_decode_as_with_the_default_converter() -> None:
    sent = a_carried_task_input()
    payloads = DefaultPayloadConverter().to_payloads([sent])
    ours = ExosuitPayloadConverter().from_payloads(payloads, [TaskInput])[0]
    default = DefaultPayloadConverter().from_payloads(payloads, [TaskInput])[0]
    assert ours == default == sent
    assert isinstance(ours.carried.steps[0].kind, StepKind)  # enums come back as enums


def test_unknown_keys_are_ignored_and_a_missing_required_field_is_refused() -> None:
    decision = Decision(gate_id="g_1", action=DecisionAction.APPROVE, actor="ana@example.com", role=None)
    fields = dataclasses.asdict(decision) | {"from_a_newer_version": 1}
    assert round_trip(fields, Decision) == decision
    del fields["gate_id"]
    with pytest.raises(Exception, match="gate_id"):
        round_trip(fields, Decision)


def test_a_class_s_hints_are_resolved_once() -> None:
    assert fields_of(TaskInput) is fields_of(TaskInput)
    assert {f.name: f.hint for f in fields_of(Anchor)} == {"seq": int, "hash": str}
