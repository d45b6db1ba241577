"""TaskWorkflow: plan, then walk every step through the gates its autonomy level demands.

Split by concern: the state it carries (`TaskState`), the recorder (workflows/recorder.py),
the gate loop (workflows/gates.py) and the step walker (workflows/steps.py); this class
holds the flow from submission to the end, and the messages people send it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.audit import SYSTEM_ACTOR, Anchor
    from exosuit.domain.autonomy import AutonomyLevel, GateKind
    from exosuit.domain.contracts import (
        CHAIN_CHANGED,
        DRAFT_PLAN_ACTIVITY,
        AutonomyChange,
        CancelRequest,
        CapChange,
        Decision,
        PlanDraft,
        PlanRequest,
        TaskEvent,
        TaskInput,
        TaskOutcome,
    )
    from exosuit.domain.decisions import check_autonomy_change, check_decision, check_fresh
    from exosuit.domain.quorum import decides
    from exosuit.domain.refusals import Finished
    from exosuit.domain.task import EventAction, StepStatus, TaskStatus
    from exosuit.domain.task_state import DONE, StepState, TaskState
    from workflows.gates import GateKeeper, states_of, via
    from workflows.open_gate import as_application_errors
    from workflows.policies import MAX_PLAN_ATTEMPTS, model_call
    from workflows.recorder import Recorder
    from workflows.steps import ENDING, Outcome, StepWalker
    from workflows.votes import vote


@workflow.defn
class TaskWorkflow:
    @workflow.init
    def __init__(self, task: TaskInput) -> None:
        self._task = task
        self._state = task.state or TaskState(task.autonomy)  # what the next run carries
        self._recorder = Recorder(task.task_id, self._state)
        self._gates = GateKeeper(task, self._state, self._recorder, self._cancelled, self._continue_as_new)
        self._steps = StepWalker(task, self._state, self._recorder, self._gates)
        self._cancel: CancelRequest | None = None
        self._finished = False
        self._current: StepState | None = None  # the step being walked, which a failure names

    @workflow.run
    async def run(self, task: TaskInput) -> TaskOutcome:
        await self._begin(task)
        resumable = True
        try:
            status, reason = await self._drive()
        except (ActivityError, ApplicationError) as err:  # a local activity's failure arrives bare
            cause = err.cause if isinstance(err, ActivityError) else err
            status = TaskStatus.FAILED
            reason = cause.message if isinstance(cause, FailureError) else err.message
            if isinstance(cause, ApplicationError) and cause.type == CHAIN_CHANGED:
                self._state.head, resumable = None, False  # verification shows where the chain broke
        await self._end(status, reason)
        resume = self._next_run() if status is TaskStatus.FAILED and resumable else None
        return TaskOutcome(status, self._state.head, resume)  # the head stays readable after the run

    async def _begin(self, task: TaskInput) -> None:
        """The first record of a run: a submission, a resume, or nothing (continue-as-new)."""
        if task.resumed_by is not None:
            await self._recorder.record(
                EventAction.TASK_RESUMED,
                actor=f"user:{task.resumed_by}",
                status=TaskStatus.RUNNING if self._state.planned else TaskStatus.PLANNING,
                data=via(task.resumed_via) | {"from_step": self._state.first_unfinished()},
            )
        elif task.state is None:
            await self._recorder.record(
                EventAction.TASK_SUBMITTED,
                actor=f"user:{task.submitted_by}",
                data=via(task.submitted_via)
                | {"team": task.team, "autonomy": task.autonomy}
                | ({"solo": True} if task.solo else {}),
                defer=True,  # with task.planning, which follows at once
            )

    async def _end(self, status: TaskStatus, reason: str | None) -> None:
        self._finished = True
        self._gates.drop_ahead()  # a gate the last step's run opened closes with the task
        await workflow.wait_condition(workflow.all_handlers_finished)  # e.g. a slider move in flight
        cancelled_by = self._cancel if status is TaskStatus.CANCELLED else None
        failed_step = self._current if status is TaskStatus.FAILED else None
        await self._recorder.record(
            EventAction.ended(status),
            actor=f"user:{cancelled_by.actor}" if cancelled_by else SYSTEM_ACTOR,
            status=status,
            error=reason,
            close_gate=True,
            step_id=failed_step.id if failed_step else None,
            step_status=StepStatus.FAILED if failed_step else None,
            data={"reason": reason} if reason else {},
        )

    # --- runs: continue-as-new and resume carry the state ---------------------------------

    def _next_run(self) -> TaskInput:
        return replace(self._task, state=self._state, resumed_by=None, resumed_via=None)

    async def _continue_as_new_if_suggested(self) -> None:
        """Between steps, when the history grows long: a new run with the same state."""
        if workflow.info().is_continue_as_new_suggested() and self._gates.may_continue_as_new():
            await self._continue_as_new()

    async def _continue_as_new(self) -> None:
        """A new run with the same state (inside a gate loop, `state.walk` says where)."""
        await self._recorder.flush()
        await workflow.wait_condition(workflow.all_handlers_finished)
        self._gates.carry_ahead()
        workflow.continue_as_new(self._next_run())

    # --- the flow -------------------------------------------------------------------------

    async def _drive(self) -> Outcome:
        if not self._state.planned:
            if not self._gates.resuming(GateKind.PLAN, None):  # else drafted by the run before
                await self._plan(None)
            ruling = await self._gates.until_approved(GateKind.PLAN, None, self._plan)
            if not ruling.go:
                return ENDING[ruling.verdict], ruling.reason
            self._state.planned = True
        for step in self._state.steps:
            if step.status in DONE:
                continue  # done in an earlier run
            if self._cancel is not None:
                return TaskStatus.CANCELLED, None
            await self._continue_as_new_if_suggested()
            self._current = step
            outcome = await self._steps.walk(step)
            if outcome is not None:
                return outcome
        self._current = None
        return TaskStatus.COMPLETED, None

    async def _plan(self, feedback: str | None) -> None:
        """Ask the model for a plan until it validates; else the deterministic planner's."""
        record = self._recorder.record
        planning = self._recorder.event(
            EventAction.TASK_PLANNING, status=TaskStatus.PLANNING, data={"feedback": feedback}
        )
        error: str | None = None
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 2):
            request = PlanRequest(
                self._task.task_id,
                self._recorder.next_key(),
                attempt,
                feedback,
                validation_error=error,
                fallback=attempt > MAX_PLAN_ATTEMPTS,
            )
            draft = await (self._first_draft(request, planning) if attempt == 1 else self._draft(request))
            if draft.steps is None:
                await record(EventAction.PLAN_INVALID, actor=draft.actor, data=draft.data, call=draft.call)
                error = draft.error
                continue
            await record(
                EventAction.TASK_PLANNED,
                actor=draft.actor,
                data=draft.data,
                new_plan=draft.steps,
                call=draft.call,
                defer=True,  # with the plan gate, or what comes first without one
            )
            self._state.steps = states_of(draft.steps)
            return

    async def _draft(self, request: PlanRequest) -> PlanDraft:
        draft: PlanDraft = await workflow.execute_activity(
            DRAFT_PLAN_ACTIVITY, request, result_type=PlanDraft, **model_call(self._model_wait)
        )
        return draft

    async def _first_draft(self, request: PlanRequest, planning: TaskEvent) -> PlanDraft:
        """The first attempt records the planning's start itself, after what was deferred (a
        decision that sent the plan back), before it asks the model; what it could not write,
        the workflow writes: the same events, by their keys."""
        async with self._recorder.handing_over(planning) as first:
            try:
                draft = await self._draft(replace(request, first=first))
            except ActivityError:
                await self._recorder.write(first)  # the decision that sent it back stays recorded
                raise
            await self._recorder.took(first, draft.started)
        return draft

    @property
    def _model_wait(self) -> timedelta:
        return timedelta(seconds=self._task.model_wait_seconds)

    # --- decisions --------------------------------------------------------------------------

    @workflow.update
    async def decide(self, decision: Decision) -> bool:
        """A human's verdict on the open gate; returns once it is recorded (True), or at once
        when the model step it approves records it first thing (False: the caller waits for
        the read model to show it)."""
        self._validate_decide(decision)  # again: a racing decision may have won meanwhile
        self._state.remember(decision.message_id)
        slot = self._gates.open
        if slot is not None and not decides(decision, slot.gate):  # a quorum gate's vote
            await vote(slot, decision, self._recorder)
            return True
        return await self._gates.claim(decision)

    @decide.validator
    def _validate_decide(self, decision: Decision) -> None:
        with as_application_errors():
            check_fresh(decision.message_id, self._state.applied)
            check_decision(decision, self._gates.decidable(), submitter=self._task.submitted_by)

    # --- the slider and cancel --------------------------------------------------------------

    @workflow.update
    async def set_autonomy(self, change: AutonomyChange) -> None:
        """Move the slider; gates not yet opened follow the new level."""
        self._validate_autonomy(change)
        self._state.remember(change.message_id)
        if change.cap is not None:
            self._state.cap = change.cap  # the team's cap as the web read it just now
        previous, self._state.level = self._state.level, change.autonomy
        await self._recorder.record(
            EventAction.AUTONOMY_CHANGED,
            actor=f"user:{change.actor}",
            autonomy=change.autonomy,
            data={"from": previous, "to": change.autonomy} | via(change.via_token),
        )

    @set_autonomy.validator
    def _validate_autonomy(self, change: AutonomyChange) -> None:
        with as_application_errors():
            check_fresh(change.message_id, self._state.applied)
            check_autonomy_change(
                change,
                cap=change.cap or self._cap,
                submitter=self._task.submitted_by,
                finished=self._finished,
            )

    @property
    def _cap(self) -> AutonomyLevel:
        """The team's cap as last told (a slider move or a lowered cap), else the submission's."""
        return self._state.cap or self._task.max_autonomy

    @workflow.update
    async def lower_cap(self, change: CapChange) -> None:
        """The team's cap was lowered: remember it, and bring the level down to it if above."""
        self._validate_cap(change)
        self._state.remember(change.message_id)
        self._state.cap = change.cap
        if self._state.level.rank <= change.cap.rank:
            return
        previous, self._state.level = self._state.level, change.cap
        await self._recorder.record(
            EventAction.AUTONOMY_CHANGED,
            actor=SYSTEM_ACTOR,
            autonomy=change.cap,
            data={"from": previous, "to": change.cap, "reason": change.reason},
        )

    @lower_cap.validator
    def _validate_cap(self, change: CapChange) -> None:
        with as_application_errors():
            check_fresh(change.message_id, self._state.applied)
            if self._finished:
                raise Finished("the task has finished")

    @workflow.signal
    def cancel(self, request: CancelRequest) -> None:
        """Fire-and-forget: the task ends at its next gate or between steps (once: a replayed
        request, or one without its sender's id, is dropped)."""
        if not request.message_id or self._state.applied_before(request.message_id):
            return
        self._state.remember(request.message_id)
        if self._cancel is None:
            self._cancel = request

    def _cancelled(self) -> bool:
        return self._cancel is not None

    @workflow.query
    def audit_head(self) -> Anchor | None:
        """The audit chain's head as this workflow recorded it: what verification holds the
        database's chain against (None once the chain was found changed)."""
        return self._state.head
