"""Questions: who may answer, what an answer must be, and that no level skips one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from exosuit.domain.autonomy import (
    AutonomyLevel,
    DecisionAction,
    GateKind,
    OnReject,
    Risk,
    Role,
    gate_required,
)
from exosuit.domain.contracts import Decision, Gate
from exosuit.domain.decisions import Verdict, check_decision, decision_data, verdict_of
from exosuit.domain.questions import conversation, exchanges, question_from_call
from exosuit.domain.refusals import Forbidden, Invalid

SUBMITTER = "sam@example.com"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def question_gate(choices: list[str] | None = None) -> Gate:
    return Gate(
        "g_q", GateKind.QUESTION, "s_1", NOW, NOW, four_eyes=False, question="Which?", choices=choices
    )


def answer(text: str | None, actor: str = SUBMITTER, role: Role | None = Role.MEMBER) -> Decision:
    return Decision("g_q", DecisionAction.ANSWER, actor=actor, role=role, answer=text)


@pytest.mark.parametrize("level", list(AutonomyLevel))
def test_no_autonomy_level_skips_a_question(level: AutonomyLevel) -> None:
    assert gate_required(GateKind.QUESTION, level, Risk.LOW)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.APPROVER, Role.ADMIN])
def test_any_member_of_the_team_may_answer_even_the_submitter(role: Role) -> None:
    check_decision(answer("Blue", role=role), question_gate(["Red", "Blue"]), submitter=SUBMITTER)


def test_someone_outside_the_team_may_not_answer() -> None:
    with pytest.raises(Forbidden):
        check_decision(answer("Blue", role=None), question_gate(), submitter=SUBMITTER)


def test_an_answer_outside_the_choices_is_invalid() -> None:
    with pytest.raises(Invalid, match="one of"):
        check_decision(answer("Green"), question_gate(["Red", "Blue"]), submitter=SUBMITTER)


@pytest.mark.parametrize("text", [None, "", "   "])
def test_an_empty_answer_is_invalid(text: str | None) -> None:
    with pytest.raises(Invalid):
        check_decision(answer(text), question_gate(), submitter=SUBMITTER)


def test_a_free_text_question_takes_any_answer() -> None:
    check_decision(answer("Ada, in Paris"), question_gate(), submitter=SUBMITTER)


@pytest.mark.parametrize("action", [DecisionAction.APPROVE, DecisionAction.EDIT])
def test_a_question_is_not_approved_or_edited(action: DecisionAction) -> None:
    decision = Decision("g_q", action, actor="ann@example.com", role=Role.APPROVER)
    with pytest.raises(Invalid, match="answered"):
        check_decision(decision, question_gate(), submitter=SUBMITTER)


def test_answer_is_valid_only_on_a_question_gate() -> None:
    gate = Gate("g_q", GateKind.STEP, "s_1", NOW, NOW, four_eyes=False)
    with pytest.raises(Invalid, match="only a question"):
        check_decision(answer("yes", role=Role.APPROVER), gate, submitter=SUBMITTER)


def test_an_approver_may_reject_a_question_to_stop_or_skip_but_not_revise() -> None:
    stop = Decision(
        "g_q", DecisionAction.REJECT, "ann@x.org", Role.APPROVER, reason="no", on_reject=OnReject.STOP
    )
    check_decision(stop, question_gate(), submitter=SUBMITTER)
    revise = Decision("g_q", DecisionAction.REJECT, "ann@x.org", Role.APPROVER, reason="no")
    with pytest.raises(Invalid):
        check_decision(revise, question_gate(), submitter=SUBMITTER)
    member = Decision(
        "g_q", DecisionAction.REJECT, "m@x.org", Role.MEMBER, reason="no", on_reject=OnReject.STOP
    )
    with pytest.raises(Forbidden):
        check_decision(member, question_gate(), submitter=SUBMITTER)


def test_an_answer_lets_the_step_go_on_and_is_audited_with_the_question() -> None:
    decision = answer(" Blue ")
    assert verdict_of(decision) is Verdict.GO
    data = decision_data(question_gate(["Blue"]), decision)
    assert data["action"] == "answer" and data["answer"] == "Blue" and data["question"] == "Which?"


def test_a_model_call_becomes_a_question_fit_to_show() -> None:
    q = question_from_call(
        '{"question": " Tone? ", "choices": ["A", "A", "", 3, "B"], "why": "unsure"}', "c1"
    )
    assert (q.text, q.choices, q.why, q.call_id) == ("Tone?", ["A", "B"], "unsure", "c1")


def test_the_steps_latest_run_holds_its_questions_and_answers_in_order() -> None:
    trail = [
        ("system", "step.started", {"step_id": "s_1"}),
        (
            "model:m",
            "gate.opened",
            {"gate_id": "g1", "kind": "question", "step_id": "s_1", "question": "Old?"},
        ),
        ("system", "step.started", {"step_id": "s_1"}),  # a new run forgets the old one
        (
            "model:m",
            "gate.opened",
            {"gate_id": "g2", "kind": "question", "step_id": "s_1", "question": "Q?", "call_id": "c2"},
        ),
        ("user:ann@x.org", "gate.decided", {"gate_id": "g2", "action": "answer", "answer": "Yes"}),
        (
            "model:m",
            "gate.opened",
            {"gate_id": "g3", "kind": "question", "step_id": "s_2", "question": "Other?"},
        ),
    ]
    found = exchanges(trail, "s_1")
    assert [(e.gate_id, e.answer, e.answered_by) for e in found] == [("g2", "Yes", "user:ann@x.org")]
    messages = conversation(found)
    assert messages[0]["tool_calls"][0]["id"] == "c2"
    assert messages[1] == {"role": "tool", "tool_call_id": "c2", "content": "Yes"}
