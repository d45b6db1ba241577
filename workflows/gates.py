"""The gate loop: open a gate, wait for its decision (escalating once), settle it.

`until_approved` asks while the level (read at each turn) demands the gate and redoes the
work on `revise`; `decision` is one gate's life: open -> wait -> settle. The `decide`
update claims the open gate (`claim`) and answers once the decision is recorded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, NamedTuple

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.audit import SYSTEM_ACTOR
    from exosuit.domain.autonomy import (
        DecisionAction,
        GateKind,
        OnReject,
        Risk,
        four_eyes_required,
        gate_required,
    )
    from exosuit.domain.contracts import REVISION_LIMIT, Answer, Decision, Gate, NewStep, TaskInput
    from exosuit.domain.decisions import ArgsEdit, TextEdit, Verdict, check_edit, decision_data, verdict_of
    from exosuit.domain.questions import question_data
    from exosuit.domain.refusals import RefusalKind
    from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
    from exosuit.domain.task_state import HeldGate, StepState, TaskState, Walk
    from exosuit.domain.tools import args_hash
    from workflows.open_gate import GatePhase, OpenGate
    from workflows.recorder import Recorder


class Ruling(NamedTuple):
    """What a gate's decision means for the flow, and the reviewer's reason."""

    verdict: Verdict
    reason: str | None = None

    @property
    def go(self) -> bool:
        return self.verdict is Verdict.GO


GO = Ruling(Verdict.GO)  # approved, or no gate was needed
# What a `revise` does, given the reason: None to ask again, or a ruling that ends the loop.
Redo = Callable[[str | None], Awaitable[Ruling | None]]

_STEP_WAITS = {
    GateKind.STEP: StepStatus.AWAITING_APPROVAL,
    GateKind.COST: StepStatus.AWAITING_APPROVAL,
    GateKind.OUTPUT: StepStatus.AWAITING_REVIEW,
}


class GateKeeper:
    def __init__(
        self,
        task: TaskInput,
        state: TaskState,
        recorder: Recorder,
        cancelled: Callable[[], bool],
        continue_as_new: Callable[[], Awaitable[None]],
    ) -> None:
        self._task = task
        self._state = state
        self._recorder = recorder
        self._cancelled = cancelled
        self._continue_as_new = continue_as_new
        self._held: HeldGate | None = None  # the gate an earlier run left open, to re-open
        self.walking: Walk | None = None  # the gate loop being walked, which a new run resumes
        self._wait = timedelta(seconds=task.gate_deadline_seconds)
        self.open: OpenGate | None = None  # the one gate a task has open
        # A step's approval in this run: the seq of its gate.decided, which a tool step's
        # execution key names (a resumed run approves, and so executes, afresh).
        self.approved_at: dict[str, int] = {}

    def resuming(self, kind: GateKind, step: StepState | None) -> bool:
        """Whether this run continues a gate loop an earlier run left for continue-as-new."""
        walk = self._state.walk
        return walk is not None and walk.gate == kind.value and walk.step_id == (step.id if step else None)

    async def until_approved(self, kind: GateKind, step: StepState | None, redo: Redo) -> Ruling:
        """While the level demands this gate, open it; on `revise`, redo and ask again.

        A long loop continues as new when Temporal suggests it: after a revision's redo, and
        while the gate waits with no decision in flight; the next run comes back here."""
        carried = self._state.walk if self.resuming(kind, step) else None
        self._state.walk = None
        self._held = carried.held if carried else None
        self.walking = Walk(kind.value, step.id if step else None, carried.revisions if carried else 0)
        try:
            return await self._loop(kind, step, redo, self.walking)
        finally:
            self.walking = None

    async def _loop(self, kind: GateKind, step: StepState | None, redo: Redo, walk: Walk) -> Ruling:
        while gate_required(kind, self._state.level, step.risk if step else Risk.LOW):
            ruling = await self.ruling(kind, step)
            if ruling.verdict is not Verdict.REVISE:
                return ruling
            walk.revisions += 1
            revisions = walk.revisions
            if revisions > self._task.max_revisions:
                raise ApplicationError(
                    f"the {kind.value} gate was sent back for revision {revisions} times; "
                    f"the team allows {self._task.max_revisions}",
                    type=REVISION_LIMIT,
                    non_retryable=True,
                )
            ended = await redo(ruling.reason)
            if ended is not None:
                return ended
            await self._continue_as_new_if_suggested(walk)
        return GO

    async def _continue_as_new_if_suggested(self, walk: Walk) -> None:
        if workflow.info().is_continue_as_new_suggested():
            self._state.walk = walk
            await self._continue_as_new()

    async def ruling(
        self, kind: GateKind, step: StepState | None, why: str | None = None, *, asked: Answer | None = None
    ) -> Ruling:
        """One gate's decision, and what it means (with the reason)."""
        decision = await self.decision(kind, step, why, asked=asked)
        return Ruling(verdict_of(decision), decision.reason if decision else None)

    async def ask(self, step: StepState, asked: Answer) -> Ruling:
        """A question gate for the question the step asks (whatever the level): GO once it is
        answered. It is never held across continue-as-new (a new run re-opens only the gate
        loop it was walking), even when the step runs again inside an output gate's loop."""
        walking, self.walking = self.walking, None
        try:
            return await self.ruling(GateKind.QUESTION, step, asked=asked)
        finally:
            self.walking = walking

    async def decision(
        self, kind: GateKind, step: StepState | None, why: str | None, *, asked: Answer | None = None
    ) -> Decision | None:
        """Open a gate, wait for its decision, settle it; None if the task was cancelled."""
        if self._cancelled():
            return None
        slot = await self._open(kind, step, why, asked)
        await self._wait_with_escalation(slot)
        self.open = None
        if slot.decision is None:
            return None
        await self._settle(slot, step)
        return slot.decision

    async def _open(
        self, kind: GateKind, step: StepState | None, why: str | None, asked: Answer | None = None
    ) -> OpenGate:
        held, self._held = self._held, None
        if held is not None:  # already opened and recorded by the run before; decidable again
            self.open = OpenGate(_reopened(held, kind, step, self._state))
            return self.open
        risk = step.risk if step else self._state.highest_risk()
        question = asked.question if asked else None  # a question: any member answers, no four-eyes
        waived = self._task.solo and four_eyes_required(self._state.level, risk) and not question
        now = workflow.now()
        gate = Gate(
            id=f"g_{workflow.uuid4().hex[:16]}",
            kind=kind,
            step_id=step.id if step else None,
            opened_at=now,
            deadline=now + self._wait,
            four_eyes=not question and four_eyes_required(self._state.level, risk, solo=self._task.solo),
            risk=risk,
            reason=question.why if question else why,  # a question's reason: why it was asked
            question=question.text if question else None,
            choices=question.choices if question else None,
        )
        # Decidable from here on: the read model may show the gate before this record returns.
        slot = self.open = OpenGate(gate)
        await self._recorder.record(
            EventAction.GATE_OPENED,
            actor=asked.actor if asked else SYSTEM_ACTOR,  # the model that asked, with its call
            status=TaskStatus.AWAITING_APPROVAL,
            open_gate=gate,
            step_id=gate.step_id,
            step_status=_STEP_WAITS.get(kind),
            data={"gate_id": gate.id, "kind": gate.kind, "four_eyes": gate.four_eyes}
            | ({"four_eyes_waived": "solo"} if waived else {})
            | ({"reason": why} if why else {})
            | (question_data(question) if question else {}),
            call=asked.call if asked else None,
        )
        return slot

    async def _wait_with_escalation(self, slot: OpenGate) -> None:
        """Until a decision claims the gate or the task is cancelled; at the first deadline the
        gate is escalated, at the second it is rejected (stop), never approved."""
        gate = slot.gate
        if not gate.escalated and await self._answered_within(slot):
            return
        if not gate.escalated:
            await self._escalate(gate)
        if await self._answered_within(slot):
            return
        slot.phase = GatePhase.EXPIRED
        slot.decision = Decision(
            gate.id,
            DecisionAction.REJECT,
            actor=SYSTEM_ACTOR,
            reason="no decision before the deadline",
            on_reject=OnReject.STOP,
        )

    async def _escalate(self, gate: Gate) -> None:
        gate.escalated, gate.deadline = True, workflow.now() + self._wait
        await self._recorder.record(EventAction.GATE_ESCALATED, open_gate=gate, data={"gate_id": gate.id})

    async def _answered_within(self, slot: OpenGate) -> bool:
        """Until the gate's deadline; a long wait continues as new with the gate held open."""
        while True:
            try:
                await workflow.wait_condition(
                    lambda: slot.phase is GatePhase.CLAIMED or self._cancelled() or self._may_move(slot),
                    timeout=max(slot.gate.deadline - workflow.now(), timedelta(0)),
                )
            except TimeoutError:
                return False
            if not self._may_move(slot):
                return True
            self._hold(slot)
            await self._continue_as_new()

    def _may_move(self, slot: OpenGate) -> bool:
        """Continue as new from a waiting gate only in a gate loop and with no decision in
        flight (its update would be cut off); the new run re-opens the same gate."""
        return (
            self.walking is not None
            and slot.phase is GatePhase.OPEN
            and workflow.info().is_continue_as_new_suggested()
            and workflow.all_handlers_finished()
        )

    def _hold(self, slot: OpenGate) -> None:
        gate = slot.gate
        assert self.walking is not None
        held = HeldGate(gate.id, gate.opened_at, gate.deadline, gate.four_eyes, gate.escalated)
        self._state.walk = replace(self.walking, held=held)

    async def _settle(self, slot: OpenGate, step: StepState | None) -> None:
        """Record the decision; a person's update answers once it is written.

        A person's approval of a model step is written with the step's start, which follows
        at once (one transaction). A tool step's approval names its seq in the execution key,
        so it is written on its own."""
        decision = slot.decision
        assert decision is not None
        claimed = slot.phase is GatePhase.CLAIMED
        with_next = (
            claimed
            and slot.gate.kind is GateKind.STEP
            and step is not None
            and step.kind is StepKind.LLM
            and decision.action is DecisionAction.APPROVE
        )
        try:
            await self._record_decision(
                slot.gate, decision, defer=with_next, answering=slot if claimed else None
            )
        except (ActivityError, ApplicationError):
            slot.phase = GatePhase.UNRECORDED
            raise
        if claimed and not with_next:  # the deciding update answers before the flow goes on
            await workflow.wait_condition(lambda: slot.phase is GatePhase.ANSWERED)

    async def _record_decision(
        self, gate: Gate, decision: Decision, *, defer: bool, answering: OpenGate | None
    ) -> None:
        """The decision in the read model and the audit; an edit's text becomes what runs."""
        step = self._state.step(gate.step_id)
        edit = self._apply_edit(gate, decision, step) if decision.action is DecisionAction.EDIT else {}
        person = decision.actor != SYSTEM_ACTOR
        bound: dict[str, Any] = {}
        approves = decision.action is not DecisionAction.REJECT
        if approves and gate.kind is GateKind.STEP and step is not None and step.args_sha256:
            bound = {"args_sha256": step.args_sha256}  # what runs is exactly this
        await self._recorder.record(
            EventAction.GATE_DECIDED,
            actor=f"user:{decision.actor}" if person else SYSTEM_ACTOR,
            status=TaskStatus.RUNNING if person else None,
            close_gate=True,
            data=decision_data(gate, decision) | bound | via(decision.via_token),
            defer=defer,
            answering=answering,
            **edit,
        )
        if bound and step is not None:
            self.approved_at[step.id] = self._state.seq

    def _apply_edit(self, gate: Gate, decision: Decision, step: StepState | None) -> dict[str, Any]:
        """What an edit changes, as the fields of its record; the state follows it."""
        changed = check_edit(gate.kind, decision.changes)
        if isinstance(changed, ArgsEdit):
            if step is not None:
                step.args_sha256 = args_hash(changed.args)
            return {"step_id": gate.step_id, "args": changed.args}
        if isinstance(changed, TextEdit):
            return {"step_id": gate.step_id, changed.field: changed.text}
        plan = [NewStep(f"s_{workflow.uuid4().hex[:16]}", **s.model_dump()) for s in changed]
        self._state.steps = states_of(plan)
        return {"new_plan": plan}

    # --- the `decide` update's side --------------------------------------------------------

    def decidable(self) -> Gate | None:
        """The gate a decision may still claim."""
        slot = self.open
        return slot.gate if slot is not None and slot.phase is GatePhase.OPEN else None

    async def claim(self, decision: Decision) -> None:
        """Claim the open gate (already validated) and wait until the decision is recorded."""
        slot = self.open
        assert slot is not None
        slot.phase, slot.decision = GatePhase.CLAIMED, decision
        await workflow.wait_condition(lambda: slot.phase in (GatePhase.RECORDED, GatePhase.UNRECORDED))
        if slot.phase is GatePhase.UNRECORDED:
            raise ApplicationError(
                "the decision could not be recorded; the task has stopped", type=RefusalKind.NOT_OPEN.value
            )
        slot.phase = GatePhase.ANSWERED


def _reopened(held: HeldGate, kind: GateKind, step: StepState | None, state: TaskState) -> Gate:
    return Gate(
        id=held.id,
        kind=kind,
        step_id=step.id if step else None,
        opened_at=held.opened_at,
        deadline=held.deadline,
        four_eyes=held.four_eyes,
        escalated=held.escalated,
        risk=step.risk if step else state.highest_risk(),
    )


def states_of(plan: list[NewStep]) -> list[StepState]:
    """The workflow's memory of a plan: ids, kinds, risks, and each tool step's args hash."""
    return [
        StepState(
            s.id, i, s.kind, s.risk, s.tool, args_sha256=args_hash(s.args) if s.args is not None else None
        )
        for i, s in enumerate(plan)
    ]


def via(token_name: str | None) -> dict[str, Any]:
    """An event's `token` field: the API token a person acted through, if any."""
    return {"token": token_name} if token_name else {}
