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
    from exosuit.domain.contracts import (
        REVISION_LIMIT,
        Answer,
        Decision,
        Gate,
        NewStep,
        Question,
        TaskEvent,
        TaskInput,
    )
    from exosuit.domain.decisions import ArgsEdit, TextEdit, Verdict, check_edit, decision_data, verdict_of
    from exosuit.domain.questions import question_data
    from exosuit.domain.quorum import approvals_needed
    from exosuit.domain.refusals import RefusalKind
    from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
    from exosuit.domain.task_state import HeldGate, StepState, TaskState, Walk
    from exosuit.domain.tools import args_hash
    from workflows.open_gate import GatePhase, OpenGate
    from workflows.recorder import Recorder
    from workflows.votes import tally


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

_CLAIM_ANSWERED = (GatePhase.RECORDED, GatePhase.UNRECORDED, GatePhase.DELEGATED)
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
        self.walking: Walk | None = None  # the gate loop being walked, which a new run resumes
        self._wait = timedelta(seconds=task.gate_deadline_seconds)
        # A gate open before the flow comes to it: opened by a model step's run, or left open
        # by the run before (re-opened under its id, decidable from this run's first moment).
        self._ahead: OpenGate | None = _held_open(state, task)
        self.open: OpenGate | None = self._ahead  # the one gate a task has open
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
        self.walking = Walk(kind.value, step.id if step else None, carried.revisions if carried else 0)
        try:
            return await self._loop(kind, step, redo, self.walking)
        finally:
            self.walking = None

    async def _loop(self, kind: GateKind, step: StepState | None, redo: Redo, walk: Walk) -> Ruling:
        while self.opened_ahead(kind, step) or gate_required(
            kind, self._state.level, step.risk if step else Risk.LOW
        ):  # a gate open already is asked whatever the level is now
            ruling = await self.ruling(kind, step)
            if ruling.verdict is not Verdict.REVISE:
                return ruling
            walk.revisions += 1
            revisions = walk.revisions
            if revisions > self._task.max_revisions:
                await self._recorder.flush()  # the decision that sent it back once too often
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
        if workflow.info().is_continue_as_new_suggested() and self.may_continue_as_new():
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
            self.drop_ahead()
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
        ahead = self._take_ahead(kind, step)
        if ahead is not None:  # recorded already, by a model step's run or by the run before
            self.open = ahead
            return ahead
        gate = self._new_gate(kind, step, why, asked.question if asked else None)
        # Decidable from here on: the read model may show the gate before this record returns.
        slot = self.open = OpenGate(gate)
        await self._recorder.record(EventAction.GATE_OPENED, **self._opened(gate, why, asked))
        return slot

    def _new_gate(
        self, kind: GateKind, step: StepState | None, why: str | None, question: Question | None = None
    ) -> Gate:
        risk = step.risk if step else self._state.highest_risk()
        # A question: any member of the team answers it, once (no four-eyes, no quorum).
        needed = 1 if question else approvals_needed(risk, self._task.quorum_high, solo=self._task.solo)
        four_eyes = four_eyes_required(self._state.level, risk, solo=self._task.solo) or needed > 1
        now = workflow.now()
        return Gate(
            id=f"g_{workflow.uuid4().hex[:16]}",
            kind=kind,
            step_id=step.id if step else None,
            opened_at=now,
            deadline=now + self._wait,
            four_eyes=four_eyes and not question,
            risk=risk,
            reason=question.why if question else why,  # a question's reason: why it was asked
            approvals_needed=needed,
            question=question.text if question else None,
            choices=question.choices if question else None,
        )

    def _opened(self, gate: Gate, why: str | None, asked: Answer | None = None) -> dict[str, Any]:
        """The fields of a gate's `gate.opened` record (a question's: the model that asked, and
        its call)."""
        question = asked.question if asked else None
        waived = self._task.solo and four_eyes_required(self._state.level, gate.risk) and not question
        return {
            "actor": asked.actor if asked else SYSTEM_ACTOR,
            "status": TaskStatus.AWAITING_APPROVAL,
            "open_gate": gate,
            "step_id": gate.step_id,
            "step_status": _STEP_WAITS.get(gate.kind),
            "data": {"gate_id": gate.id, "kind": gate.kind, "four_eyes": gate.four_eyes}
            | ({"four_eyes_waived": "solo"} if waived else {})
            | ({"reason": why} if why else {})
            | ({"approvals_needed": gate.approvals_needed} if gate.approvals_needed > 1 else {})
            | (question_data(question) if question else {}),
            "call": asked.call if asked else None,
        }

    # --- a gate opened ahead, by a model step's run -----------------------------------------

    def ahead(self, kind: GateKind, step: StepState) -> TaskEvent | None:
        """Open the gate that follows a model step's answer ahead of the flow: its record, for
        the step's run to write with the answer (None if the task is being cancelled).
        Decidable from here on; the flow comes to it (`_open`) whatever the level is by then,
        as to any gate opened before the slider moved."""
        if self._cancelled():
            return None
        gate = self._new_gate(kind, step, None)
        self._ahead = self.open = OpenGate(gate)
        return self._recorder.event(EventAction.GATE_OPENED, **self._opened(gate, None))

    def opened_ahead(self, kind: GateKind, step: StepState | None) -> bool:
        slot = self._ahead
        step_id = step.id if step else None
        return slot is not None and slot.gate.kind is kind and slot.gate.step_id == step_id

    def _take_ahead(self, kind: GateKind, step: StepState | None) -> OpenGate | None:
        if not self.opened_ahead(kind, step):
            return None
        slot, self._ahead = self._ahead, None
        return slot

    def drop_ahead(self) -> None:
        """The gate opened ahead will not be reached (the run failed, the task ends): a
        decision that claimed it is told it was not recorded."""
        slot, self._ahead = self._ahead, None
        if slot is None:
            return
        if slot.phase is GatePhase.CLAIMED:
            slot.phase = GatePhase.UNRECORDED
        if self.open is slot:
            self.open = None

    def may_continue_as_new(self) -> bool:
        """Not while a decision waits on a gate opened ahead (the flow must record it first)."""
        return self._ahead is None or self._ahead.phase is GatePhase.OPEN

    def carry_ahead(self) -> None:
        """Continuing as new before the flow reached the gate opened ahead: the next run
        re-opens it, as a gate held open (its loop, or a new one, starts there)."""
        slot = self._ahead
        if slot is None:
            return
        walk = self._state.walk or Walk(slot.gate.kind.value, slot.gate.step_id)
        self._state.walk = replace(walk, held=_held(slot.gate))

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
        assert self.walking is not None
        self._state.walk = replace(self.walking, held=_held(slot.gate))

    async def _settle(self, slot: OpenGate, step: StepState | None) -> None:
        """Record the decision; a person's update answers once it is written.

        A person's approval of a model step is written with the step's start, and a plan sent
        back with the next draft's start, which follow at once (one transaction, by their
        activity). A tool step's approval names its seq in the execution key, so it is written
        on its own."""
        decision = slot.decision
        assert decision is not None
        claimed = slot.phase is GatePhase.CLAIMED
        runs_step = (
            slot.gate.kind is GateKind.STEP
            and step is not None
            and step.kind is StepKind.LLM
            and decision.action is DecisionAction.APPROVE
        )
        plans_again = slot.gate.kind is GateKind.PLAN and verdict_of(decision) is Verdict.REVISE
        with_next = claimed and (runs_step or plans_again)
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
            data=decision_data(gate, decision) | bound | via(decision.via_token) | tally(gate, decision),
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

    async def claim(self, decision: Decision) -> bool:
        """Claim the open gate (already validated) and wait until the decision is recorded
        (True), or handed to the model step's run that records it first thing (False)."""
        slot = self.open
        assert slot is not None
        slot.phase, slot.decision = GatePhase.CLAIMED, decision
        await workflow.wait_condition(lambda: slot.phase in _CLAIM_ANSWERED)
        if slot.phase is GatePhase.UNRECORDED:
            raise ApplicationError(
                "the decision could not be recorded; the task has stopped", type=RefusalKind.NOT_OPEN.value
            )
        if slot.phase is GatePhase.DELEGATED:
            return False
        slot.phase = GatePhase.ANSWERED
        return True


def _held(gate: Gate) -> HeldGate:
    """An open gate as the next run carries it (its deadline and votes go on)."""
    return HeldGate(
        gate.id, gate.opened_at, gate.deadline, gate.four_eyes, gate.escalated, list(gate.approvals)
    )


def _held_open(state: TaskState, task: TaskInput) -> OpenGate | None:
    """The gate the run before left open (continued as new while it waited, or before the flow
    reached a gate a model step's run had opened)."""
    walk = state.walk
    if walk is None or walk.held is None:
        return None
    return OpenGate(_reopened(walk.held, GateKind(walk.gate), state.step(walk.step_id), state, task))


def _reopened(
    held: HeldGate, kind: GateKind, step: StepState | None, state: TaskState, task: TaskInput
) -> Gate:
    risk = step.risk if step else state.highest_risk()
    return Gate(
        id=held.id,
        kind=kind,
        step_id=step.id if step else None,
        opened_at=held.opened_at,
        deadline=held.deadline,
        four_eyes=held.four_eyes,
        escalated=held.escalated,
        risk=risk,
        approvals=list(held.approvals),
        approvals_needed=approvals_needed(risk, task.quorum_high, solo=task.solo),
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
