"""TaskWorkflow: plan, then walk every step through the gates its autonomy level demands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.audit import GENESIS_HASH, SYSTEM_ACTOR, Anchor
    from exosuit.domain.autonomy import GateKind, Risk, four_eyes_required, gate_required
    from exosuit.domain.contracts import (
        ANSWER_STEP_ACTIVITY,
        CALL_TOOL_ACTIVITY,
        CHAIN_CHANGED,
        COST_CHECK_ACTIVITY,
        DRAFT_INSTRUCTIONS_ACTIVITY,
        DRAFT_PLAN_ACTIVITY,
        PLAN_ACTIVITY,
        RECORD_ACTIVITY,
        RECORD_EVENTS_ACTIVITY,
        REDRAFT_ACTIVITY,
        REVISION_LIMIT,
        RUN_STEP_ACTIVITY,
        Answer,
        AutonomyChange,
        CancelRequest,
        Carried,
        CostCheck,
        Decision,
        Gate,
        NewStep,
        PlanDraft,
        PlanRequest,
        PlanResult,
        StepRequest,
        StepState,
        TaskEvent,
        TaskInput,
        TaskOutcome,
        ToolCall,
    )
    from exosuit.domain.decisions import (
        ArgsEdit,
        DecisionAction,
        OnReject,
        TextEdit,
        Verdict,
        check_autonomy_change,
        check_decision,
        check_edit,
        decision_data,
        verdict_of,
    )
    from exosuit.domain.refusals import RefusalKind
    from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
    from exosuit.domain.tools import args_hash, execution_key
    from workflows.gates import GatePhase, OpenGate, as_application_errors
    from workflows.policies import MAX_PLAN_ATTEMPTS, STORE_WRITE, model_call, tool_call

Outcome = tuple[TaskStatus, str | None]  # how the task ends, and the reason when there is one
Redo = Callable[[str | None], Awaitable[None]]  # what a `revise` verdict does, given the reason

_ENDING = {Verdict.STOP: TaskStatus.REJECTED, Verdict.CANCELLED: TaskStatus.CANCELLED}
_STEP_WAITS = {
    GateKind.STEP: StepStatus.AWAITING_APPROVAL,
    GateKind.COST: StepStatus.AWAITING_APPROVAL,
    GateKind.OUTPUT: StepStatus.AWAITING_REVIEW,
}


@workflow.defn
class TaskWorkflow:
    @workflow.init
    def __init__(self, task: TaskInput) -> None:
        self._task = task
        self._level = task.autonomy
        self._steps: list[StepState] = []
        self._open: OpenGate | None = None
        self._cancel: CancelRequest | None = None
        self._finished = False
        self._events = 0
        self._head: Anchor | None = None  # the audit chain's head, as this workflow recorded it
        self._recording = asyncio.Lock()  # one record at a time, so each names the head it follows
        self._pending: list[TaskEvent] = []  # deferred events, recorded with the next one
        self._batched = False  # patch "batched-records": deferred events share a transaction
        # Patch "records-with-next": events that another follows at once share its transaction
        # (a submission with the planning start, a plan with its gate, a step's approval with
        # the step's start; that approval's update answers once it is written).
        self._with_next = False
        self._deciding: OpenGate | None = None  # a claimed gate whose decision waits in _pending
        self._budgeted = True  # the task or its team has a budget (as of the last record)
        self._planned = False  # the plan is approved: the steps are what is left
        self._current: StepState | None = None  # the step being walked, which a failure names
        # Models' work comes back to the workflow and is recorded from here (older runs
        # stored it inside the model's activity, where a database error threw it away).
        self._separate_writes = False
        self._approved_at: dict[str, int] = {}  # a step's approval: the seq of its gate.decided

    @workflow.run
    async def run(self, task: TaskInput) -> TaskOutcome:
        if task.carried is not None:
            self._restore(task.carried)
        elif workflow.patched("audit-anchor"):  # older runs recorded no heads: they are not checked
            self._head = Anchor(0, GENESIS_HASH)
        self._separate_writes = workflow.patched("separate-store-writes")
        self._batched = workflow.patched("batched-records")
        self._with_next = self._batched and workflow.patched("records-with-next")
        if task.resumed_by is not None:
            await self._record(
                EventAction.TASK_RESUMED,
                actor=f"user:{task.resumed_by}",
                status=TaskStatus.RUNNING if self._planned else TaskStatus.PLANNING,
                data=_via(task.resumed_via) | {"from_step": _first_unfinished(self._steps, self._planned)},
            )
        elif task.carried is None:
            await self._record(
                EventAction.TASK_SUBMITTED,
                actor=f"user:{task.submitted_by}",
                data=_via(task.submitted_via)
                | {"team": task.team, "autonomy": task.autonomy}
                | ({"solo": True} if task.solo else {}),
                defer=self._with_next,  # with task.planning, which follows at once
            )
        resumable = True
        try:
            status, reason = await self._drive()
        except (ActivityError, ApplicationError) as err:  # a local activity's failure arrives bare
            cause = err.cause if isinstance(err, ActivityError) else err
            status = TaskStatus.FAILED
            reason = cause.message if isinstance(cause, FailureError) else err.message
            if isinstance(cause, ApplicationError) and cause.type == CHAIN_CHANGED:
                self._head, resumable = None, False  # verification shows where the chain broke
        self._finished = True
        await workflow.wait_condition(workflow.all_handlers_finished)  # e.g. a slider move in flight
        cancelled_by = self._cancel if status is TaskStatus.CANCELLED else None
        failed_step = self._current if status is TaskStatus.FAILED else None
        await self._record(
            EventAction.ended(status),
            actor=f"user:{cancelled_by.actor}" if cancelled_by else SYSTEM_ACTOR,
            status=status,
            error=reason,
            close_gate=True,
            step_id=failed_step.id if failed_step else None,
            step_status=StepStatus.FAILED if failed_step else None,
            data={"reason": reason} if reason else {},
        )
        resume = self._next_run() if status is TaskStatus.FAILED and resumable else None
        return TaskOutcome(status, self._head, resume)  # the head stays readable after the run

    # --- runs: continue-as-new and resume carry one state value ------------------------

    def _carried(self) -> Carried:
        return Carried(self._level, self._steps, self._events, self._head, self._planned)

    def _restore(self, carried: Carried) -> None:
        self._level, self._steps, self._events = carried.level, carried.steps, carried.events
        self._head, self._planned = carried.head, carried.planned

    def _next_run(self) -> TaskInput:
        return replace(self._task, carried=self._carried(), resumed_by=None, resumed_via=None)

    async def _continue_as_new_if_suggested(self) -> None:
        """Between steps, when the history grows long: a new run with the same state."""
        if not workflow.info().is_continue_as_new_suggested():
            return
        await self._flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._next_run())

    # --- the flow -----------------------------------------------------------------------

    async def _drive(self) -> Outcome:
        if not self._planned:
            await self._plan(None)
            verdict, reason = await self._until_approved(GateKind.PLAN, None, self._plan)
            if verdict is not Verdict.GO:
                return _ENDING[verdict], reason
            self._planned = True
        for step in self._steps:
            if step.status in (StepStatus.COMPLETED, StepStatus.SKIPPED):
                continue  # done in an earlier run
            if self._cancel is not None:
                return TaskStatus.CANCELLED, None
            await self._continue_as_new_if_suggested()
            self._current = step
            outcome = await self._walk_step(step)
            if outcome is not None:
                return outcome
        self._current = None
        return TaskStatus.COMPLETED, None

    async def _plan(self, feedback: str | None) -> None:
        """Ask the model for a plan until it validates; else the deterministic planner's."""
        await self._record(EventAction.TASK_PLANNING, status=TaskStatus.PLANNING, data={"feedback": feedback})
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
            if self._separate_writes:
                draft = await workflow.execute_activity(
                    DRAFT_PLAN_ACTIVITY, request, result_type=PlanDraft, **self._model_call
                )
                if draft.steps is None:
                    await self._record(
                        EventAction.PLAN_INVALID, actor=draft.actor, data=draft.data, call=draft.call
                    )
                    error = draft.error
                    continue
                await self._record(
                    EventAction.TASK_PLANNED,
                    actor=draft.actor,
                    data=draft.data,
                    new_plan=draft.steps,
                    call=draft.call,
                    defer=self._with_next,  # with the plan gate, or what comes first without one
                )
                self._steps = _states(draft.steps)
                return
            result = await workflow.execute_activity(
                PLAN_ACTIVITY, request, result_type=PlanResult, **self._model_call
            )
            self._head = result.head
            if result.valid:
                self._steps = result.steps
                return
            error = result.error

    async def _walk_step(self, step: StepState) -> Outcome | None:
        """Cost gate, step gate, run, output gate; an outcome if the task ends here."""
        # Without a budget (as the last record saw it) there is nothing to check.
        if step.kind is StepKind.LLM and workflow.patched("cost-gates") and self._budgeted:
            await self._flush()  # the check reads what was spent
            check = await workflow.execute_local_activity(
                COST_CHECK_ACTIVITY,
                StepRequest(self._task.task_id, step.id, self._next_key()),
                result_type=CostCheck,
                **STORE_WRITE,
            )
            if check.crosses is not None:
                verdict, reason = await self._verdict(GateKind.COST, step, check.crosses)
                if verdict is not Verdict.GO:
                    return await self._leave(step, verdict, reason)

        left: tuple[Verdict, str | None] | None = None  # "sent, result unknown", then not approved

        async def redraft(reason: str | None) -> None:
            if not self._separate_writes:
                return await self._stored_by_activity(REDRAFT_ACTIVITY, step, reason)
            answer = await self._answer(DRAFT_INSTRUCTIONS_ACTIVITY, step, reason)
            await self._record(
                EventAction.STEP_REDRAFTED,
                actor=answer.actor,
                data=answer.data,
                step_id=step.id,
                step_status=StepStatus.PENDING,
                instructions=answer.text,
                args=answer.args,
                call=answer.call,
            )
            if answer.args is not None:
                step.args_sha256 = args_hash(answer.args)

        async def run(feedback: str | None) -> None:
            await self._record(
                EventAction.STEP_STARTED,
                status=TaskStatus.RUNNING,
                step_id=step.id,
                step_status=StepStatus.RUNNING,
            )
            if not self._separate_writes:
                return await self._stored_by_activity(RUN_STEP_ACTIVITY, step, feedback)
            if step.kind is StepKind.TOOL and workflow.patched("tool-calls"):
                nonlocal left
                left = await self._call_tool(step)
                return None
            answer = await self._answer(ANSWER_STEP_ACTIVITY, step, feedback)
            await self._record(
                EventAction.STEP_FINISHED,
                actor=answer.actor,
                data=answer.data,
                step_id=step.id,
                output=answer.text,
                call=answer.call,
                defer=True,  # with what comes next: an output gate, or step.completed and on
            )

        verdict, reason = await self._until_approved(GateKind.STEP, step, redraft)
        if verdict is Verdict.GO:
            await run(None)
            if left is None:
                verdict, reason = await self._until_approved(GateKind.OUTPUT, step, run)
            if left is not None:
                verdict, reason = left
        if verdict is not Verdict.GO:
            return await self._leave(step, verdict, reason)
        step.status = StepStatus.COMPLETED
        await self._record(
            EventAction.STEP_COMPLETED, step_id=step.id, step_status=StepStatus.COMPLETED, defer=True
        )
        return None

    async def _until_approved(
        self, kind: GateKind, step: StepState | None, redo: Redo
    ) -> tuple[Verdict, str | None]:
        """The one gate loop: while the level (read now) demands this gate, open it; on
        `revise`, redo the work with the reviewer's reason and ask again."""
        risk = step.risk if step else Risk.LOW
        revisions = 0
        while gate_required(kind, self._level, risk):
            verdict, reason = await self._verdict(kind, step)
            if verdict is not Verdict.REVISE:
                return verdict, reason
            revisions += 1
            if revisions > self._task.max_revisions:
                raise ApplicationError(
                    f"the {kind.value} gate was sent back for revision {revisions} times; "
                    f"the team allows {self._task.max_revisions}",
                    type=REVISION_LIMIT,
                    non_retryable=True,
                )
            await redo(reason)
        return Verdict.GO, None

    async def _verdict(
        self, kind: GateKind, step: StepState | None, why: str | None = None
    ) -> tuple[Verdict, str | None]:
        """Open a gate, wait for its decision, and say what it means (with the reason)."""
        decision = await self._await_decision(kind, step, why)
        return verdict_of(decision), decision.reason if decision else None

    async def _leave(self, step: StepState, verdict: Verdict, reason: str | None) -> Outcome | None:
        """Skip the step (the task goes on), or end the task."""
        if verdict is not Verdict.SKIP:
            return _ENDING[verdict], reason
        step.status = StepStatus.SKIPPED
        await self._record(EventAction.STEP_SKIPPED, step_id=step.id, step_status=StepStatus.SKIPPED)
        return None

    @property
    def _model_call(self) -> dict[str, Any]:
        return model_call(self._wait)

    async def _answer(self, activity: str, step: StepState, feedback: str | None) -> Answer:
        await self._flush()
        request = StepRequest(self._task.task_id, step.id, self._next_key(), feedback)
        answer: Answer = await workflow.execute_activity(
            activity, request, result_type=Answer, **self._model_call
        )
        return answer

    async def _call_tool(self, step: StepState) -> tuple[Verdict, str | None] | None:
        """Run a tool step once under its key (the attempt recorded before, the result after);
        if a crash left its result unknown, a person decides at the step's gate whether to send
        it again (same key) or not. A verdict other than GO when they decide not to."""
        seq = self._approved_at.get(step.id) or (self._head.seq if self._head else self._events)
        key = execution_key(self._task.task_id, step.id, seq)
        attempt: dict[str, Any] = {"tool": step.tool, "key": key, "args_sha256": step.args_sha256}
        resend = False
        while True:
            await self._record(
                EventAction.TOOL_CALLED, step_id=step.id, data=attempt | ({"resend": True} if resend else {})
            )
            call = ToolCall(self._task.task_id, step.id, key, step.args_sha256, resend)
            answer: Answer = await workflow.execute_activity(
                CALL_TOOL_ACTIVITY, call, result_type=Answer, **tool_call(self._wait)
            )
            if not answer.unknown:
                await self._record(
                    EventAction.STEP_FINISHED,
                    actor=answer.actor,
                    data=answer.data,
                    step_id=step.id,
                    output=answer.text,
                )
                return None
            await self._record(EventAction.TOOL_UNKNOWN, step_id=step.id, data=answer.data)
            why = (
                f"sent, result unknown: the worker stopped after sending {step.tool} (key {key}) and "
                "before recording its result. Check the other side; approve to send it again with "
                "the same key, or reject to skip or stop"
            )
            verdict, reason = await self._verdict(GateKind.STEP, step, why)
            if verdict is not Verdict.GO:
                return verdict, reason
            resend = step.args_sha256 == attempt["args_sha256"]
            if not resend:  # edited at that gate: other arguments, a new execution and key
                key = execution_key(self._task.task_id, step.id, self._approved_at[step.id])
                attempt |= {"key": key, "args_sha256": step.args_sha256}

    @property
    def _wait(self) -> timedelta:
        return timedelta(seconds=self._task.model_wait_seconds)

    async def _stored_by_activity(self, activity: str, step: StepState, feedback: str | None) -> None:
        """Runs started before "separate-store-writes": the activity stored its own answer."""
        await self._flush()
        request = StepRequest(self._task.task_id, step.id, self._next_key(), feedback)
        self._head = _anchor(await workflow.execute_activity(activity, request, **self._model_call))

    # --- gates --------------------------------------------------------------------------

    async def _await_decision(
        self, kind: GateKind, step: StepState | None, why: str | None
    ) -> Decision | None:
        """Open a gate and wait for its decision; None if the task was cancelled."""
        if self._cancel is not None:
            return None
        risk = step.risk if step else _highest_risk(self._steps)
        now = workflow.now()
        wait = timedelta(seconds=self._task.gate_deadline_seconds)
        gate = Gate(
            id=f"g_{workflow.uuid4().hex[:16]}",
            kind=kind,
            step_id=step.id if step else None,
            opened_at=now,
            deadline=now + wait,
            four_eyes=four_eyes_required(self._level, risk, solo=self._task.solo),
            risk=risk,
            reason=why,
        )
        waived = self._task.solo and four_eyes_required(self._level, risk)  # said in the audit
        # Decidable from here on: the read model may show the gate before this record returns.
        slot = self._open = OpenGate(gate)
        await self._record(
            EventAction.GATE_OPENED,
            status=TaskStatus.AWAITING_APPROVAL,
            open_gate=gate,
            step_id=gate.step_id,
            step_status=_STEP_WAITS.get(kind),
            data={"gate_id": gate.id, "kind": gate.kind, "four_eyes": gate.four_eyes}
            | ({"four_eyes_waived": "solo"} if waived else {})
            | ({"reason": why} if why else {}),
        )

        def answered() -> bool:
            return slot.phase is GatePhase.CLAIMED or self._cancel is not None

        try:
            await workflow.wait_condition(answered, timeout=wait)
        except TimeoutError:
            gate.escalated, gate.deadline = True, workflow.now() + wait
            await self._record(EventAction.GATE_ESCALATED, open_gate=gate, data={"gate_id": gate.id})
            try:
                await workflow.wait_condition(answered, timeout=wait)
            except TimeoutError:
                # The second deadline: the gate is rejected (stop), never approved.
                slot.phase = GatePhase.EXPIRED
                slot.decision = Decision(
                    gate.id,
                    DecisionAction.REJECT,
                    actor=SYSTEM_ACTOR,
                    reason="no decision before the deadline",
                    on_reject=OnReject.STOP,
                )
        self._open = None
        if slot.decision is None:
            return None
        # A person's approval of a model step is written with the step's start, which follows
        # at once (one transaction): its update answers once that is written. (A tool step's
        # approval names its seq in the execution key, so it is written on its own.)
        with_next = (
            self._with_next
            and slot.phase is GatePhase.CLAIMED
            and kind is GateKind.STEP
            and step is not None
            and step.kind is StepKind.LLM
            and slot.decision.action is DecisionAction.APPROVE
        )
        try:
            await self._record_decision(gate, slot.decision, defer=with_next)
        except (ActivityError, ApplicationError):
            slot.phase = GatePhase.UNRECORDED
            raise
        if with_next:
            self._deciding = slot  # _flush_locked marks it recorded (or not)
            return slot.decision
        if slot.phase is GatePhase.CLAIMED:  # the deciding update answers before the flow goes on
            slot.phase = GatePhase.RECORDED
            await workflow.wait_condition(lambda: slot.phase is GatePhase.ANSWERED)
        return slot.decision

    async def _record_decision(self, gate: Gate, decision: Decision, *, defer: bool = False) -> None:
        """The decision in the read model and the audit; an edit's text becomes what runs."""
        edit: dict[str, Any] = {}
        step = next((s for s in self._steps if s.id == gate.step_id), None)
        if decision.action is DecisionAction.EDIT:
            changed = check_edit(gate.kind, decision.changes)
            if isinstance(changed, ArgsEdit):
                edit = {"step_id": gate.step_id, "args": changed.args}
                if step is not None:
                    step.args_sha256 = args_hash(changed.args)
            elif isinstance(changed, TextEdit):
                edit = {"step_id": gate.step_id, changed.field: changed.text}
            else:
                plan = [NewStep(f"s_{workflow.uuid4().hex[:16]}", **s.model_dump()) for s in changed]
                edit = {"new_plan": plan}
                self._steps = _states(plan)
        person = decision.actor != SYSTEM_ACTOR
        approves = decision.action is not DecisionAction.REJECT
        bound: dict[str, Any] = {}
        if approves and gate.kind is GateKind.STEP and step is not None and step.args_sha256:
            bound = {"args_sha256": step.args_sha256}  # what runs is exactly this
        await self._record(
            EventAction.GATE_DECIDED,
            actor=f"user:{decision.actor}" if person else SYSTEM_ACTOR,
            status=TaskStatus.RUNNING if person else None,
            close_gate=True,
            data=decision_data(gate, decision) | bound | _via(decision.via_token),
            defer=defer,
            **edit,
        )
        if bound and step is not None:
            self._approved_at[step.id] = self._head.seq if self._head else self._events

    def _decidable(self) -> Gate | None:
        """The gate a decision may still claim."""
        slot = self._open
        return slot.gate if slot is not None and slot.phase is GatePhase.OPEN else None

    @workflow.update
    async def decide(self, decision: Decision) -> None:
        """A human's verdict on the open gate; returns once it is recorded."""
        self._validate_decide(decision)  # again: a racing decision may have won meanwhile
        slot = self._open
        assert slot is not None
        slot.phase, slot.decision = GatePhase.CLAIMED, decision
        await workflow.wait_condition(lambda: slot.phase in (GatePhase.RECORDED, GatePhase.UNRECORDED))
        if slot.phase is GatePhase.UNRECORDED:
            raise ApplicationError(
                "the decision could not be recorded; the task has stopped", type=RefusalKind.NOT_OPEN.value
            )
        slot.phase = GatePhase.ANSWERED

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        with as_application_errors():
            check_decision(decision, self._decidable(), submitter=self._task.submitted_by)

    # --- the slider and cancel ----------------------------------------------------------

    @workflow.update
    async def set_autonomy(self, change: AutonomyChange) -> None:
        """Move the slider; gates not yet opened follow the new level."""
        self._validate_autonomy(change)
        previous, self._level = self._level, change.autonomy
        await self._record(
            EventAction.AUTONOMY_CHANGED,
            actor=f"user:{change.actor}",
            autonomy=change.autonomy,
            data={"from": previous, "to": change.autonomy} | _via(change.via_token),
        )

    @set_autonomy.validator
    def _validate_autonomy(self, change: AutonomyChange) -> None:
        with as_application_errors():
            check_autonomy_change(
                change,
                cap=self._task.max_autonomy,
                submitter=self._task.submitted_by,
                finished=self._finished,
            )

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Fire-and-forget: the task ends at its next gate or between steps."""
        if self._cancel is None:
            self._cancel = request

    # --- recording ----------------------------------------------------------------------

    def _next_key(self) -> str:
        self._events += 1
        return f"{workflow.info().workflow_id}/{self._events}"

    async def _record(
        self, action: EventAction, *, actor: str = SYSTEM_ACTOR, defer: bool = False, **fields: Any
    ) -> None:
        """Record an event; `defer`: with the next one (one transaction, one local activity)."""
        async with self._recording:
            event = TaskEvent(self._task.task_id, self._next_key(), actor, action, **fields)
            self._pending.append(event)
            if not (defer and self._batched):
                await self._flush_locked()

    async def _flush(self) -> None:
        """Record what was deferred: before anything that reads the database or waits."""
        async with self._recording:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self._pending:
            return
        events, self._pending = self._pending, []
        events[0].after = self._head  # the chain must still end where this workflow left it
        deciding, self._deciding = self._deciding, None
        try:
            if self._batched:
                result = await workflow.execute_local_activity(RECORD_EVENTS_ACTIVITY, events, **STORE_WRITE)
                self._budgeted = bool(result.get("budgeted", True)) if isinstance(result, dict) else True
            else:
                result = await workflow.execute_local_activity(RECORD_ACTIVITY, events[0], **STORE_WRITE)
        except (ActivityError, ApplicationError):
            if deciding is not None:  # its update says the decision could not be recorded
                deciding.phase = GatePhase.UNRECORDED
            raise
        self._head = _anchor(result)
        if deciding is not None:  # the decision is written: its update answers
            deciding.phase = GatePhase.RECORDED

    @workflow.query
    def audit_head(self) -> Anchor | None:
        """The audit chain's head as this workflow recorded it: what verification holds the
        database's chain against (None for runs started before heads were kept)."""
        return self._head


def _anchor(result: Any) -> Anchor | None:
    """A recorded head from an activity's result (older runs' results carry none)."""
    return Anchor(result["seq"], result["hash"]) if isinstance(result, dict) and "hash" in result else None


def _first_unfinished(steps: list[StepState], planned: bool) -> int | None:
    """The step (1-based) a resumed run starts from; None: it plans again."""
    if not planned:
        return None
    done = (StepStatus.COMPLETED, StepStatus.SKIPPED)
    return next((s.index + 1 for s in steps if s.status not in done), None)


def _states(plan: list[NewStep]) -> list[StepState]:
    """The workflow's memory of a plan: ids, kinds, risks, and each tool step's args hash."""
    return [
        StepState(
            s.id, i, s.kind, s.risk, s.tool, args_sha256=args_hash(s.args) if s.args is not None else None
        )
        for i, s in enumerate(plan)
    ]


def _highest_risk(steps: list[StepState]) -> Risk:
    return max((s.risk for s in steps), key=lambda r: r.rank, default=Risk.LOW)


def _via(token_name: str | None) -> dict[str, Any]:
    return {"token": token_name} if token_name else {}
