"""TaskWorkflow: plan, then walk every step through the gates its autonomy level demands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from exosuit.autonomy import (
        AutonomyLevel,
        GateKind,
        Risk,
        Role,
        four_eyes_required,
        gate_required,
        may_decide,
        may_set_autonomy,
    )
    from exosuit.contracts import (
        COST_CHECK_ACTIVITY,
        FORBIDDEN,
        GATE_NOT_OPEN,
        INVALID,
        PLAN_ACTIVITY,
        RECORD_ACTIVITY,
        REDRAFT_ACTIVITY,
        RUN_STEP_ACTIVITY,
        TASK_FINISHED,
        AutonomyChange,
        CancelRequest,
        CostCheck,
        Decision,
        Gate,
        NewStep,
        PlanRequest,
        PlanResult,
        StepRequest,
        StepResult,
        StepState,
        TaskEvent,
        TaskInput,
    )
    from exosuit.plan import PlanInvalid, validate_steps
    from workflows.policies import MAX_PLAN_ATTEMPTS, MODEL_CALL, STORE_WRITE

Outcome = tuple[str, str | None]  # final status, and the reason when there is one


def _refuse(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


@workflow.defn
class TaskWorkflow:
    @workflow.init
    def __init__(self, task: TaskInput) -> None:
        self._task = task
        self._level = AutonomyLevel(task.autonomy)
        self._steps: list[StepState] = []
        self._gate: Gate | None = None
        self._gate_recorded = False  # the open gate is in the read model
        self._claimed = False  # a decision on the open gate is being recorded
        self._decision: Decision | None = None
        self._cancel: CancelRequest | None = None
        self._finished = False
        self._events = 0

    @workflow.run
    async def run(self, task: TaskInput) -> str:
        await self._record(
            "task.submitted",
            actor=f"user:{task.submitted_by}",
            data=_via(task.submitted_via) | {"team": task.team, "autonomy": task.autonomy},
        )
        try:
            status, reason = await self._drive()
        except ActivityError as err:
            cause = err.cause
            status, reason = "failed", cause.message if isinstance(cause, FailureError) else err.message
        self._finished = True
        await workflow.wait_condition(workflow.all_handlers_finished)  # e.g. a slider move in flight
        actor = "system"
        if status == "cancelled" and self._cancel is not None:
            actor = f"user:{self._cancel.actor}"
        await self._record(
            f"task.{status}",
            actor=actor,
            status=status,
            error=reason,
            close_gate=True,
            data={"reason": reason} if reason else {},
        )
        return status

    # --- the flow -----------------------------------------------------------------------

    async def _drive(self) -> Outcome:
        feedback: str | None = None
        while True:
            await self._plan(feedback)
            if not gate_required(GateKind.PLAN, self._level):
                break
            verdict, feedback = await self._verdict(GateKind.PLAN, None)
            if verdict == "go":
                break
            if verdict != "revise":
                return verdict, feedback
        for step in self._steps:
            if self._cancel is not None:
                return "cancelled", None
            outcome = await self._walk_step(step)
            if outcome is not None:
                return outcome
        return "completed", None

    async def _plan(self, feedback: str | None) -> None:
        """Ask the model for a plan until it validates; else the deterministic planner's."""
        await self._record("task.planning", status="planning", data={"feedback": feedback})
        error: str | None = None
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 2):
            request = PlanRequest(
                self._task.task_id,
                self._next_key(),
                attempt,
                feedback,
                validation_error=error,
                fallback=attempt > MAX_PLAN_ATTEMPTS,
            )
            result = await workflow.execute_activity(
                PLAN_ACTIVITY, request, result_type=PlanResult, **MODEL_CALL
            )
            if result.valid:
                self._steps = result.steps
                return
            error = result.error

    async def _walk_step(self, step: StepState) -> Outcome | None:
        """Cost gate, step gate, run, output gate; an outcome if the task ends here."""
        if step.kind == "llm" and workflow.patched("cost-gates"):
            check = await workflow.execute_local_activity(
                COST_CHECK_ACTIVITY,
                StepRequest(self._task.task_id, step.id, self._next_key()),
                result_type=CostCheck,
                **STORE_WRITE,
            )
            if check.crosses is not None:
                verdict, reason = await self._verdict(GateKind.COST, step, check.crosses)
                if verdict != "go":
                    return await self._leave(step, verdict, reason)
        while gate_required(GateKind.STEP, self._level, Risk(step.risk)):
            verdict, reason = await self._verdict(GateKind.STEP, step)
            if verdict == "go":
                break
            if verdict != "revise":
                return await self._leave(step, verdict, reason)
            await self._model_call(REDRAFT_ACTIVITY, step, reason)
        feedback: str | None = None
        while True:
            await self._record("step.started", status="running", step_id=step.id, step_status="running")
            await self._model_call(RUN_STEP_ACTIVITY, step, feedback)
            if not gate_required(GateKind.OUTPUT, self._level):
                break
            verdict, feedback = await self._verdict(GateKind.OUTPUT, step)
            if verdict == "go":
                break
            if verdict != "revise":
                return await self._leave(step, verdict, feedback)
        step.status = "completed"
        await self._record("step.completed", step_id=step.id, step_status="completed")
        return None

    async def _verdict(
        self, kind: GateKind, step: StepState | None, why: str | None = None
    ) -> tuple[str, str | None]:
        """What a gate's decision means for the flow, with the reviewer's reason.

        'go' (approved, or edited and approved), 'revise', 'skip', or how the task ends:
        'rejected' (stop) or 'cancelled'.
        """
        decision = await self._await_decision(kind, step, why)
        if decision is None:
            return "cancelled", None
        if decision.action != "reject":
            return "go", None
        return {"stop": "rejected", "skip": "skip"}.get(decision.on_reject, "revise"), decision.reason

    async def _leave(self, step: StepState, verdict: str, reason: str | None) -> Outcome | None:
        """Skip the step (the task goes on), or end the task."""
        if verdict != "skip":
            return verdict, reason
        step.status = "skipped"
        await self._record("step.skipped", step_id=step.id, step_status="skipped")
        return None

    async def _model_call(self, activity: str, step: StepState, feedback: str | None) -> None:
        request = StepRequest(self._task.task_id, step.id, self._next_key(), feedback)
        await workflow.execute_activity(activity, request, result_type=StepResult, **MODEL_CALL)

    # --- gates --------------------------------------------------------------------------

    async def _await_decision(
        self, kind: GateKind, step: StepState | None, why: str | None = None
    ) -> Decision | None:
        """Open a gate and wait for its decision; None if the task was cancelled."""
        if self._cancel is not None:
            return None
        risk = Risk(step.risk) if step else _highest_risk(self._steps)
        now = workflow.now()
        wait = timedelta(seconds=self._task.gate_deadline_seconds)
        gate = Gate(
            id=f"g_{workflow.uuid4().hex[:16]}",
            kind=kind.value,
            step_id=step.id if step else None,
            opened_at=now,
            deadline=now + wait,
            four_eyes=four_eyes_required(self._level, risk),
            risk=risk.value,
            reason=why,
        )
        self._gate, self._claimed, self._decision = gate, False, None
        self._gate_recorded = False
        step_status = {
            GateKind.STEP: "awaiting_approval",
            GateKind.COST: "awaiting_approval",
            GateKind.OUTPUT: "awaiting_review",
        }
        await self._record(
            "gate.opened",
            status="awaiting_approval",
            open_gate=gate,
            step_id=gate.step_id,
            step_status=step_status.get(kind),
            data={"gate_id": gate.id, "kind": gate.kind, "four_eyes": gate.four_eyes}
            | ({"reason": why} if why else {}),
        )
        self._gate_recorded = True

        def answered() -> bool:
            return self._claimed or self._cancel is not None

        try:
            await workflow.wait_condition(answered, timeout=wait)
        except TimeoutError:
            gate.escalated, gate.deadline = True, workflow.now() + wait
            await self._record("gate.escalated", open_gate=gate, data={"gate_id": gate.id})
            try:
                await workflow.wait_condition(answered, timeout=wait)
            except TimeoutError:
                await self._expire(gate)
        if self._claimed:
            await workflow.wait_condition(lambda: self._decision is not None)
        self._gate = None
        return self._decision if self._claimed else None

    async def _expire(self, gate: Gate) -> None:
        """The second deadline passed: the gate is rejected (stop), never approved."""
        self._claimed = True
        decision = Decision(
            gate.id,
            "reject",
            actor="system",
            reason="no decision before the deadline",
            on_reject="stop",
        )
        await self._record("gate.decided", close_gate=True, data=_decision_data(gate, decision))
        self._decision = decision

    @workflow.update
    async def decide(self, decision: Decision) -> None:
        """A human's verdict on the open gate; the edited text is what runs."""
        gate = self._check_decision(decision)
        self._claimed = True  # refuses a racing second decision from here on
        await workflow.wait_condition(lambda: self._gate_recorded)
        edit: dict[str, Any] = {}
        new_steps: list[StepState] | None = None
        if decision.action == "edit":
            edit, new_steps = self._edit_fields(gate, decision.changes)
        await self._record(
            "gate.decided",
            actor=f"user:{decision.actor}",
            status="running",
            close_gate=True,
            data=_decision_data(gate, decision) | _via(decision.via_token),
            **edit,
        )
        if new_steps is not None:
            self._steps = new_steps
        self._decision = decision

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        self._check_decision(decision)

    def _check_decision(self, decision: Decision) -> Gate:
        gate = self._gate
        if gate is None or gate.id != decision.gate_id or self._claimed:
            raise _refuse(f"gate {decision.gate_id} is not open", GATE_NOT_OPEN)
        refusal = may_decide(
            actor=decision.actor,
            role=Role(decision.role) if decision.role else None,
            submitter=self._task.submitted_by,
            four_eyes=gate.four_eyes,
        )
        if refusal:
            raise _refuse(refusal, FORBIDDEN)
        if decision.action not in ("approve", "edit", "reject"):
            raise _refuse("action must be approve, edit or reject", INVALID)
        if decision.action == "reject":
            if not (decision.reason or "").strip():
                raise _refuse("a rejection needs a reason", INVALID)
            if decision.on_reject not in ("revise", "skip", "stop"):
                raise _refuse("on_reject must be revise, skip or stop", INVALID)
            if decision.on_reject == "skip" and gate.kind == GateKind.PLAN:
                raise _refuse("a plan cannot be skipped; revise or stop it", INVALID)
            if decision.on_reject == "revise" and gate.kind == GateKind.COST:
                raise _refuse("a cost gate is approved, or rejected to skip or stop", INVALID)
        if decision.action == "edit":
            self._edit_fields(gate, decision.changes, check_only=True)
        return gate

    def _edit_fields(
        self, gate: Gate, changes: dict[str, Any], check_only: bool = False
    ) -> tuple[dict[str, Any], list[StepState] | None]:
        """The read-model fields an edit sets (and the new steps for a plan edit)."""
        if gate.kind == GateKind.COST:
            raise _refuse("a cost gate has nothing to edit: approve it, or reject to skip or stop", INVALID)
        if gate.kind == GateKind.PLAN:
            try:
                steps = validate_steps(changes)
            except PlanInvalid as exc:
                raise _refuse(str(exc), INVALID) from None
            if check_only:
                return {}, None
            plan = [NewStep(f"s_{workflow.uuid4().hex[:16]}", **s.model_dump()) for s in steps]
            states = [StepState(s.id, i, s.kind, s.risk, s.tool) for i, s in enumerate(plan)]
            return {"new_plan": plan}, states
        field = "instructions" if gate.kind == GateKind.STEP else "output"
        text = changes.get(field)
        if not isinstance(text, str) or not text.strip() or set(changes) != {field}:
            raise _refuse(f"an edit of a {gate.kind} gate changes {{{field!r}: text}}", INVALID)
        return {"step_id": gate.step_id, field: text}, None

    # --- the slider and cancel ----------------------------------------------------------

    @workflow.update
    async def set_autonomy(self, change: AutonomyChange) -> None:
        """Move the slider; gates not yet opened follow the new level."""
        self._check_autonomy(change)
        previous, self._level = self._level, AutonomyLevel(change.autonomy)
        await self._record(
            "autonomy.changed",
            actor=f"user:{change.actor}",
            autonomy=change.autonomy,
            data={"from": previous.value, "to": change.autonomy} | _via(change.via_token),
        )

    @set_autonomy.validator
    def _validate_autonomy(self, change: AutonomyChange) -> None:
        self._check_autonomy(change)

    def _check_autonomy(self, change: AutonomyChange) -> None:
        if self._finished:
            raise _refuse("the task has finished", TASK_FINISHED)
        try:
            level, cap = AutonomyLevel(change.autonomy), AutonomyLevel(change.max_autonomy)
        except ValueError:
            raise _refuse(f"unknown autonomy level {change.autonomy!r}", INVALID) from None
        if level.rank > cap.rank:
            raise _refuse(f"{level.value} is above the team's cap ({cap.value})", INVALID)
        role = Role(change.role) if change.role else None
        if not may_set_autonomy(actor=change.actor, role=role, submitter=self._task.submitted_by):
            raise _refuse("only the submitter or an approver can move the slider", FORBIDDEN)

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Fire-and-forget: the task ends at its next gate or between steps."""
        if self._cancel is None:
            self._cancel = request

    # --- recording ----------------------------------------------------------------------

    def _next_key(self) -> str:
        self._events += 1
        return f"{workflow.info().workflow_id}/{self._events}"

    async def _record(self, action: str, *, actor: str = "system", **fields: Any) -> None:
        event = TaskEvent(self._task.task_id, self._next_key(), actor, action, **fields)
        await workflow.execute_local_activity(RECORD_ACTIVITY, event, **STORE_WRITE)


def _highest_risk(steps: list[StepState]) -> Risk:
    return max((Risk(s.risk) for s in steps), key=lambda r: r.rank, default=Risk.LOW)


def _via(token_name: str | None) -> dict[str, Any]:
    return {"token": token_name} if token_name else {}


def _decision_data(gate: Gate, decision: Decision) -> dict[str, Any]:
    data: dict[str, Any] = {"gate_id": gate.id, "kind": gate.kind, "action": decision.action}
    if decision.action == "reject":
        data |= {"reason": decision.reason, "on_reject": decision.on_reject}
    elif decision.reason:
        data["reason"] = decision.reason
    return data
