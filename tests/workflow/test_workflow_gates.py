"""TaskWorkflow's gate lifecycle on the time-skipping test server, with scripted activities.

No database, no model: the activities below stand in by name and keep a journal of what
the workflow recorded and asked for. A 24-hour deadline passes in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from exosuit.domain.autonomy import AutonomyLevel, DecisionAction, GateKind, OnReject, Risk, Role
from exosuit.domain.contracts import (
    ANSWER_STEP_ACTIVITY,
    CHAIN_CHANGED,
    COST_CHECK_ACTIVITY,
    DRAFT_INSTRUCTIONS_ACTIVITY,
    DRAFT_PLAN_ACTIVITY,
    RECORD_EVENTS_ACTIVITY,
    Answer,
    AutonomyChange,
    CancelRequest,
    CapChange,
    CostCheck,
    Decision,
    Gate,
    NewStep,
    PlanDraft,
    PlanRequest,
    Question,
    Recorded,
    StepRequest,
    TaskEvent,
    TaskInput,
    TaskOutcome,
    answered,
)
from exosuit.domain.refusals import RefusalKind
from exosuit.domain.task import EventAction, StepKind
from exosuit.domain.task_state import HeldGate, StepState, TaskState, Walk
from workflows.task import TaskWorkflow

DAY = 24 * 3600.0
SUBMITTER, APPROVER, OTHER = "sam@example.com", "ada@example.com", "bo@example.com"


@dataclass
class Script:
    """The activities, by name: a fixed plan, steps that just run, and a journal."""

    steps: list[StepState]
    crosses_budget: str | None = None
    failing_steps: int = 0  # step answers that fail (non-retryable) before they succeed
    budgeted: bool = True  # what a record says: a budget applies (a cost check before model steps)
    refuse_first: bool = False  # a step's run cannot write its start (as if the chain changed)
    unrecorded_answers: int = 0  # step answers whose write fails in the run (the workflow writes them)
    hold: asyncio.Event | None = None  # a step's run waits for it after writing its start
    hold_answered: asyncio.Event | None = None  # and for this one after writing its answer
    questions: int = 0  # step answers that ask a person (ask_human) before one answers
    events: list[TaskEvent] = field(default_factory=list)
    calls: list[tuple[str, str | None]] = field(default_factory=list)  # (activity, feedback)
    local_writes: int = 0  # the workflow's own records (its local activity)
    cost_checks: list[str] = field(default_factory=list)  # by the flow, or by the run before

    @activity.defn(name=RECORD_EVENTS_ACTIVITY)
    async def record_all(self, events: list[TaskEvent]) -> Recorded:
        self.local_writes += 1
        return self._journal(events)

    def _journal(self, events: list[TaskEvent]) -> Recorded:
        # Idempotent by key, like the real event writer: a local activity may run again
        # when its workflow task is retried.
        for event in events:
            if all(e.key != event.key for e in self.events):
                self.events.append(event)
        return Recorded(len(self.events), f"{len(self.events):064x}", budgeted=self.budgeted)

    @activity.defn(name=DRAFT_PLAN_ACTIVITY)
    async def plan(self, request: PlanRequest) -> PlanDraft:
        """Like the real one: a first attempt writes the planning's start before it plans."""
        self.calls.append((DRAFT_PLAN_ACTIVITY, request.feedback))
        started = self._journal(request.first) if request.first else None
        plan = [NewStep(s.id, f"Step {s.index + 1}", "Do it.", s.kind, s.tool, s.risk) for s in self.steps]
        return PlanDraft("system", {"planner": "script"}, steps=plan, started=started)

    @activity.defn(name=ANSWER_STEP_ACTIVITY)
    async def run_step(self, request: StepRequest) -> Answer:
        """Like the real run: its start written before the answer, the answer and what
        follows after (`request.first`, `request.then`)."""
        self.calls.append((ANSWER_STEP_ACTIVITY, request.feedback))
        if self.refuse_first:
            raise ApplicationError("the chain changed", type=CHAIN_CHANGED, non_retryable=True)
        started = self._journal(request.first)
        await _held(self.hold)
        if self.failing_steps:
            self.failing_steps -= 1
            raise ApplicationError("the provider refused the request (HTTP 400)", non_retryable=True)
        if self.questions:
            self.questions -= 1
            question = Question("Which tone?", ["Warm", "Dry"], "unsure")
            return Answer("", "model:script", question=question, started=started)
        answer = Answer("done", "model:script", started=started)
        if not request.then:  # a run again after a question: the workflow records its answer
            return answer
        if self.unrecorded_answers:
            self.unrecorded_answers -= 1
        else:
            answer.recorded = self._journal([answered(request.then[0], answer), *request.then[1:]])
            if request.check_next is not None:  # the next step's cost, then its gate within budget
                self.cost_checks.append("run")
                answer.next_cost = CostCheck(self.crosses_budget)
                if self.crosses_budget is None and request.next_gate is not None:
                    answer.recorded = self._journal([request.next_gate])
        await _held(self.hold_answered)
        return answer

    @activity.defn(name=DRAFT_INSTRUCTIONS_ACTIVITY)
    async def redraft(self, request: StepRequest) -> Answer:
        self.calls.append((DRAFT_INSTRUCTIONS_ACTIVITY, request.feedback))
        return Answer("Do it differently.", "model:script")

    @activity.defn(name=COST_CHECK_ACTIVITY)
    async def cost(self, request: StepRequest) -> CostCheck:
        self.cost_checks.append("flow")
        return CostCheck(self.crosses_budget)

    def actions(self) -> list[str]:
        return [e.action.value for e in self.events]

    def gates(self) -> list[Gate]:
        return [e.open_gate for e in self.events if e.action is EventAction.GATE_OPENED and e.open_gate]

    async def gate(self, kind: GateKind, *, seen: int = 0, within: float = 10.0) -> Gate:
        """The first gate opened after `seen` gates, once it is of `kind`."""
        await self.until(lambda: len(self.gates()) > seen, f"gate {seen + 1}", within)
        gate = self.gates()[seen]
        assert gate.kind is kind, (gate, self.actions())
        return gate

    async def until(self, check: Callable[[], bool], what: str, within: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not check():
            assert loop.time() < deadline, f"timed out waiting for {what}: {self.actions()}"
            await asyncio.sleep(0.01)


async def _held(hold: asyncio.Event | None) -> None:
    while hold is not None and not hold.is_set():
        activity.heartbeat()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hold.wait(), 0.05)


def steps(*risks: Risk) -> list[StepState]:
    return [StepState(f"s_{n}", n, StepKind.LLM, risk) for n, risk in enumerate(risks)]


@dataclass
class Run:
    script: Script
    handle: WorkflowHandle[TaskWorkflow, TaskOutcome]
    queue: str

    async def ended(self) -> str:
        """How the task ended (the server skips time while this waits)."""
        return (await self.handle.result()).status.value

    async def decide(
        self, gate: Gate, action: DecisionAction = DecisionAction.APPROVE, **fields: object
    ) -> None:
        actor = fields.pop("actor", APPROVER)
        fields.setdefault("message_id", uuid.uuid4().hex)
        decision = Decision(gate.id, action, actor=str(actor), role=Role.APPROVER, **fields)  # type: ignore[arg-type]
        await self.handle.execute_update(TaskWorkflow.decide, decision)

    async def refused(self, update: Awaitable[object], kind: RefusalKind) -> str:
        """The refusal message of an update that must fail with this kind."""
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await update
        cause = failed.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == kind.value, cause
        return cause.message


Start = Callable[..., Awaitable[Run]]


@pytest.fixture
async def start(time_env: WorkflowEnvironment) -> AsyncIterator[Start]:
    """Start a task on a worker of its own; the level, cap, deadline and plan are the test's."""
    workers: list[Worker] = []
    handles: list[WorkflowHandle[TaskWorkflow, TaskOutcome]] = []

    async def starting(
        level: AutonomyLevel,
        plan: list[StepState],
        *,
        cap: AutonomyLevel = AutonomyLevel.AUTONOMOUS,
        deadline: float = DAY,
        crosses_budget: str | None = None,
        max_revisions: int = 20,
        failing_steps: int = 0,
        quorum_high: int = 1,
        state: TaskState | None = None,
        **scripted: object,  # the Script's options
    ) -> Run:
        script = Script(plan, crosses_budget, failing_steps=failing_steps, **scripted)  # type: ignore[arg-type]
        queue = f"tq-{uuid.uuid4().hex}"
        worker = Worker(
            time_env.client,
            task_queue=queue,
            workflows=[TaskWorkflow],
            activities=[
                script.record_all,
                script.plan,
                script.run_step,
                script.redraft,
                script.cost,
            ],
        )
        await worker.__aenter__()
        workers.append(worker)
        task = TaskInput(
            f"t_{uuid.uuid4().hex[:8]}", "red", SUBMITTER, level, cap, deadline, max_revisions=max_revisions
        )
        task = replace(task, quorum_high=quorum_high, state=state)
        handle = await time_env.client.start_workflow(
            TaskWorkflow.run, task, id=f"task-{task.task_id}", task_queue=queue
        )
        handles.append(handle)
        return Run(script, handle, queue)

    yield starting
    # A task left waiting at a gate, with no worker, would hold the shared server's time
    # still (its timers' workflow tasks are never polled): later tests' deadlines would not pass.
    for handle in handles:
        with contextlib.suppress(RPCError):  # ended already
            await handle.terminate("the test is over")
    for worker in workers:
        await worker.__aexit__(None, None, None)


async def test_an_unanswered_gate_is_escalated_then_rejected_never_approved(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    opened = await run.script.gate(GateKind.PLAN)
    assert await run.ended() == "rejected"  # the server skips both 24-hour deadlines
    events = run.script.events
    assert run.script.actions()[-4:] == ["gate.opened", "gate.escalated", "gate.decided", "task.rejected"]
    escalated = events[-3].open_gate
    assert escalated is not None and escalated.id == opened.id and escalated.escalated
    assert escalated.deadline - opened.deadline >= timedelta(hours=24)
    decided = events[-2]
    assert decided.actor == "system"
    assert decided.data["action"] == "reject" and decided.data["on_reject"] == "stop"
    assert events[-1].error == "no decision before the deadline"
    assert (ANSWER_STEP_ACTIVITY, None) not in run.script.calls


async def test_an_escalated_gate_can_still_be_decided(time_env: WorkflowEnvironment, start: Start) -> None:
    run: Run = await start(AutonomyLevel.GUARDED, steps(Risk.LOW))
    gate = await run.script.gate(GateKind.PLAN)
    await time_env.sleep(timedelta(hours=25))
    await run.script.until(lambda: "gate.escalated" in run.script.actions(), "escalation")
    await run.decide(gate)
    assert await run.ended() == "completed"
    decided = next(e for e in run.script.events if e.action is EventAction.GATE_DECIDED)
    assert decided.actor == f"user:{APPROVER}"


async def test_exactly_one_of_two_racing_decisions_wins(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    gate = await run.script.gate(GateKind.PLAN)
    first = run.decide(gate, DecisionAction.REJECT, reason="no", on_reject=OnReject.STOP)
    second = run.decide(gate, actor=OTHER)
    results = await asyncio.gather(first, second, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    assert len(failures) == 1 and isinstance(failures[0], WorkflowUpdateFailedError)
    assert isinstance(failures[0].cause, ApplicationError)
    assert failures[0].cause.type == RefusalKind.NOT_OPEN.value
    assert run.script.actions().count("gate.decided") == 1


async def test_a_decision_on_a_gate_no_longer_open_is_refused(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    plan_gate = await run.script.gate(GateKind.PLAN)
    await run.decide(plan_gate)
    await run.script.gate(GateKind.STEP, seen=1)
    message = await run.refused(run.decide(plan_gate), RefusalKind.NOT_OPEN)
    assert plan_gate.id in message


async def test_policy_refusals_are_typed_and_change_nothing(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    gate = await run.script.gate(GateKind.PLAN)
    four_eyes = await run.refused(run.decide(gate, actor=SUBMITTER), RefusalKind.FOUR_EYES)
    assert "four-eyes" in four_eyes
    member = Decision(gate.id, DecisionAction.APPROVE, actor=OTHER, role=Role.MEMBER, message_id="m-1")
    await run.refused(run.handle.execute_update(TaskWorkflow.decide, member), RefusalKind.FORBIDDEN)
    await run.refused(run.decide(gate, DecisionAction.REJECT), RefusalKind.INVALID)  # no reason
    await run.refused(
        run.decide(gate, DecisionAction.REJECT, reason="x", on_reject=OnReject.SKIP), RefusalKind.INVALID
    )
    await run.refused(
        run.decide(gate, DecisionAction.EDIT, changes={"instructions": "x"}), RefusalKind.INVALID
    )
    assert "gate.decided" not in run.script.actions()
    await run.decide(gate)  # still open, still decidable


async def test_revise_redoes_the_work_with_the_reason_until_approved(start: Start) -> None:
    run: Run = await start(AutonomyLevel.MANUAL, steps(Risk.LOW))
    await run.decide(await run.script.gate(GateKind.PLAN))
    step_gate = await run.script.gate(GateKind.STEP, seen=1)
    await run.decide(step_gate, DecisionAction.REJECT, reason="For children.")
    await run.decide(await run.script.gate(GateKind.STEP, seen=2))
    output_gate = await run.script.gate(GateKind.OUTPUT, seen=3)
    await run.decide(output_gate, DecisionAction.REJECT, reason="Shorter.")
    await run.decide(await run.script.gate(GateKind.OUTPUT, seen=4))
    assert await run.ended() == "completed"
    assert run.script.calls == [
        (DRAFT_PLAN_ACTIVITY, None),
        (DRAFT_INSTRUCTIONS_ACTIVITY, "For children."),
        (ANSWER_STEP_ACTIVITY, None),
        (ANSWER_STEP_ACTIVITY, "Shorter."),
    ]


async def test_an_edit_is_what_the_read_model_records(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    await run.decide(await run.script.gate(GateKind.PLAN))
    gate = await run.script.gate(GateKind.STEP, seen=1)
    await run.decide(gate, DecisionAction.EDIT, changes={"instructions": "Write one line."})
    decided = [e for e in run.script.events if e.action is EventAction.GATE_DECIDED][-1]
    assert decided.instructions == "Write one line." and decided.step_id == gate.step_id
    assert await run.ended() == "completed"


async def test_a_moved_slider_changes_every_gate_not_yet_opened(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW))
    await run.decide(await run.script.gate(GateKind.PLAN))
    first = await run.script.gate(GateKind.STEP, seen=1)
    move = AutonomyChange(AutonomyLevel.DELEGATED, actor=SUBMITTER, role=Role.MEMBER, message_id="a-1")
    await run.handle.execute_update(TaskWorkflow.set_autonomy, move)
    await run.decide(first)
    assert await run.ended() == "completed"
    assert len(run.script.gates()) == 2  # the second step ran without a gate


async def test_the_cap_is_the_one_the_task_started_with(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW), cap=AutonomyLevel.GUARDED)
    await run.script.gate(GateKind.PLAN)
    above = AutonomyChange(AutonomyLevel.DELEGATED, actor=APPROVER, role=Role.APPROVER, message_id="a-1")
    message = await run.refused(
        run.handle.execute_update(TaskWorkflow.set_autonomy, above), RefusalKind.ABOVE_CAP
    )
    assert message == "delegated is above the team's cap (guarded)"
    stranger = AutonomyChange(AutonomyLevel.MANUAL, actor=OTHER, role=Role.MEMBER, message_id="a-2")
    await run.refused(run.handle.execute_update(TaskWorkflow.set_autonomy, stranger), RefusalKind.FORBIDDEN)
    assert "autonomy.changed" not in run.script.actions()


async def test_cancel_at_an_open_gate_ends_the_task_by_the_person(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    await run.script.gate(GateKind.PLAN)
    await run.handle.signal(TaskWorkflow.cancel, CancelRequest(SUBMITTER, message_id="c-1"))
    assert await run.ended() == "cancelled"
    ended = run.script.events[-1]
    assert ended.action is EventAction.TASK_CANCELLED and ended.actor == f"user:{SUBMITTER}"
    assert ended.close_gate


async def test_a_cost_gate_opens_whatever_the_level_and_skip_moves_on(start: Start) -> None:
    run: Run = await start(AutonomyLevel.AUTONOMOUS, steps(Risk.LOW, Risk.LOW), crosses_budget="over budget")
    gate = await run.script.gate(GateKind.COST)
    assert gate.reason == "over budget"
    await run.refused(run.decide(gate, DecisionAction.REJECT, reason="x"), RefusalKind.INVALID)  # revise
    await run.decide(gate, DecisionAction.REJECT, reason="too dear", on_reject=OnReject.SKIP)
    await run.decide(await run.script.gate(GateKind.COST, seen=1))
    assert await run.ended() == "completed"
    assert "step.skipped" in run.script.actions()
    assert run.script.calls.count((ANSWER_STEP_ACTIVITY, None)) == 1


async def test_a_plans_start_is_recorded_by_its_activity_and_a_revise_by_the_next_draft(start: Start) -> None:
    """Submitted, the flow records nothing of its own before the plan gate opens but the plan
    and its gate (the submission and the planning's start are the draft's, first thing); a
    plan sent back is recorded by the next draft's activity too."""
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    gate = await run.script.gate(GateKind.PLAN)
    assert run.script.actions() == ["task.submitted", "task.planning", "task.planned", "gate.opened"]
    assert run.script.local_writes == 1  # the plan and its gate
    revise = Decision(
        gate.id,
        DecisionAction.REJECT,
        actor=APPROVER,
        role=Role.APPROVER,
        reason="Shorter.",
        message_id="r-1",
    )
    assert await run.handle.execute_update(TaskWorkflow.decide, revise) is False  # the draft records it
    again = await run.script.gate(GateKind.PLAN, seen=1)
    assert run.script.actions()[4:] == ["gate.decided", "task.planning", "task.planned", "gate.opened"]
    assert run.script.local_writes == 2
    await run.decide(again)
    await run.decide(await run.script.gate(GateKind.STEP, seen=2))
    assert await run.ended() == "completed"


async def test_a_budgeted_tasks_next_step_is_checked_by_the_run_before_it(start: Start) -> None:
    """The first model step's cost is checked by the flow; each next one's by the run before it,
    which then writes that step's gate with its answer: no record of the flow's own between."""
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW, Risk.LOW))
    await run.decide(await run.script.gate(GateKind.PLAN))
    for seen in (1, 2):
        gate = await run.script.gate(GateKind.STEP, seen=seen)
        writes = run.script.local_writes
        assert await run.handle.execute_update(TaskWorkflow.decide, _approval(gate)) is False
        assert (await run.script.gate(GateKind.STEP, seen=seen + 1)).step_id == f"s_{seen}"
        assert run.script.local_writes == writes  # the workflow wrote none of it
    await run.decide(await run.script.gate(GateKind.STEP, seen=3))
    assert await run.ended() == "completed"
    assert run.script.cost_checks == ["flow", "run", "run"]


async def test_a_next_step_over_budget_found_by_the_run_waits_at_a_cost_gate_first(start: Start) -> None:
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW))
    await run.decide(await run.script.gate(GateKind.PLAN))
    first = await run.script.gate(GateKind.STEP, seen=1)  # the flow checked the first step's cost
    run.script.crosses_budget = "over budget"  # from here: found by the first step's run
    await run.decide(first)
    cost = await run.script.gate(GateKind.COST, seen=2)
    assert cost.step_id == "s_1" and cost.reason == "over budget"
    assert run.script.gates()[1].step_id == "s_0"  # no step gate for s_1 was written ahead
    await run.decide(cost)
    step_gate = await run.script.gate(GateKind.STEP, seen=3)
    assert step_gate.step_id == "s_1"
    await run.decide(step_gate)
    assert await run.ended() == "completed"
    keys = [e.key for e in run.script.events]
    assert len(keys) == len(set(keys))


async def test_revising_a_gate_past_the_teams_cap_stops_the_task_with_the_reason(start: Start) -> None:
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW), max_revisions=2)
    for seen in range(3):
        gate = await run.script.gate(GateKind.PLAN, seen=seen)
        await run.decide(gate, DecisionAction.REJECT, reason="Not yet.", on_reject=OnReject.REVISE)
    assert await run.ended() == "failed"
    assert run.script.calls.count((DRAFT_PLAN_ACTIVITY, "Not yet.")) == 2  # the third is not redone
    ended = run.script.events[-1]
    assert ended.action is EventAction.TASK_FAILED
    assert ended.error == "the plan gate was sent back for revision 3 times; the team allows 2"


async def test_a_failed_task_resumes_from_its_failed_step_in_a_new_run(
    time_env: WorkflowEnvironment, start: Start
) -> None:
    run = await start(AutonomyLevel.AUTONOMOUS, steps(Risk.LOW, Risk.LOW, Risk.LOW), failing_steps=1)
    outcome = await run.handle.result()
    assert outcome.status.value == "failed" and outcome.resume is not None
    failed = run.script.events[-1]
    assert failed.action is EventAction.TASK_FAILED and failed.step_id == "s_0"
    assert failed.step_status is not None and failed.step_status.value == "failed"
    assert "HTTP 400" in (failed.error or "")

    # What the web's resume does: the next run, by a person, on the same workflow id.
    again = replace(outcome.resume, resumed_by=APPROVER)
    handle = await time_env.client.start_workflow(
        TaskWorkflow.run, again, id=run.handle.id, task_queue=run.queue
    )
    assert (await handle.result()).status.value == "completed"
    after = run.script.actions()[run.script.actions().index("task.failed") + 1 :]
    assert after[0] == "task.resumed" and after[-1] == "task.completed"
    assert after.count("step.finished") == 3  # the failed step again, then the two others
    keys = [e.key for e in run.script.events]
    assert len(keys) == len(set(keys))  # the new run's event keys go on from the old run's
    resumed = run.script.events[len(run.script.events) - len(after)]
    assert resumed.actor == f"user:{APPROVER}" and resumed.data["from_step"] == 1


async def test_a_replayed_slider_move_is_refused_and_the_level_stays(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    await run.script.gate(GateKind.PLAN)
    up = AutonomyChange(AutonomyLevel.DELEGATED, actor=APPROVER, role=Role.APPROVER, message_id="up-1")
    back = AutonomyChange(AutonomyLevel.MANUAL, actor=APPROVER, role=Role.APPROVER, message_id="back-1")
    await run.handle.execute_update(TaskWorkflow.set_autonomy, up)
    await run.handle.execute_update(TaskWorkflow.set_autonomy, back)
    message = await run.refused(
        run.handle.execute_update(TaskWorkflow.set_autonomy, up), RefusalKind.REPLAYED
    )
    assert message == "message up-1 was applied already; a replay changes nothing"
    moves = [e for e in run.script.events if e.action is EventAction.AUTONOMY_CHANGED]
    assert [e.autonomy for e in moves] == [AutonomyLevel.DELEGATED, AutonomyLevel.MANUAL]
    await run.decide(await run.script.gate(GateKind.PLAN))
    await run.script.gate(GateKind.STEP, seen=1)  # manual: the low step waits


async def test_a_control_message_without_its_senders_id_is_refused(start: Start) -> None:
    run: Run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW))
    gate = await run.script.gate(GateKind.PLAN)
    bare = AutonomyChange(AutonomyLevel.MANUAL, actor=APPROVER, role=Role.APPROVER)
    await run.refused(run.handle.execute_update(TaskWorkflow.set_autonomy, bare), RefusalKind.INVALID)
    decision = Decision(gate.id, DecisionAction.APPROVE, actor=APPROVER, role=Role.APPROVER, message_id="d-1")
    await run.handle.execute_update(TaskWorkflow.decide, decision)
    await run.refused(run.handle.execute_update(TaskWorkflow.decide, decision), RefusalKind.REPLAYED)
    assert "autonomy.changed" not in run.script.actions()


async def test_a_lowered_cap_brings_the_level_down_and_holds_the_slider_under_it(start: Start) -> None:
    run: Run = await start(AutonomyLevel.DELEGATED, steps(Risk.HIGH), cap=AutonomyLevel.AUTONOMOUS)
    held = await run.script.gate(GateKind.STEP)  # delegated: only the high step waits
    lowered = CapChange(AutonomyLevel.MANUAL, "team red's cap set to manual", message_id="cap-1")
    await run.handle.execute_update(TaskWorkflow.lower_cap, lowered)
    down = next(e for e in run.script.events if e.action is EventAction.AUTONOMY_CHANGED)
    assert down.actor == "system" and down.autonomy is AutonomyLevel.MANUAL
    assert down.data == {"from": "delegated", "to": "manual", "reason": "team red's cap set to manual"}
    up = AutonomyChange(AutonomyLevel.DELEGATED, actor=APPROVER, role=Role.APPROVER, message_id="up-1")
    await run.refused(run.handle.execute_update(TaskWorkflow.set_autonomy, up), RefusalKind.ABOVE_CAP)
    await run.decide(held)
    await run.script.gate(GateKind.OUTPUT, seen=1)  # manual: its output waits too (delegated: none)


async def test_two_approvals_racing_on_a_quorum_of_two_decide_the_gate_once(start: Start) -> None:
    run: Run = await start(AutonomyLevel.DELEGATED, steps(Risk.HIGH), quorum_high=2)
    gate = await run.script.gate(GateKind.STEP)
    assert (gate.approvals_needed, gate.four_eyes) == (2, True)
    await asyncio.gather(run.decide(gate), run.decide(gate, actor=OTHER))
    assert await run.ended() == "completed"
    actions = run.script.actions()
    assert (actions.count("gate.approved"), actions.count("gate.decided")) == (1, 1)
    assert actions.index("gate.approved") < actions.index("gate.decided") < actions.index("step.started")
    decided = next(e for e in run.script.events if e.action is EventAction.GATE_DECIDED)
    assert sorted(decided.data["approvals"]) == sorted([APPROVER, OTHER])


async def test_a_quorum_gate_held_across_continue_as_new_keeps_its_votes(start: Start) -> None:
    opened = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    held = HeldGate("g_held", opened, opened + timedelta(hours=24), four_eyes=True, approvals=[OTHER])
    state = TaskState(
        AutonomyLevel.DELEGATED, steps(Risk.HIGH), planned=True, walk=Walk("step", "s_0", held=held)
    )
    run: Run = await start(AutonomyLevel.DELEGATED, steps(Risk.HIGH), quorum_high=2, state=state)
    gate = Gate("g_held", GateKind.STEP, "s_0", opened, opened, four_eyes=True)
    # The new run re-opens the held gate without recording anything: until it has, a decision
    # is "not open"; then the approver who voted in the earlier run is refused a second vote.
    refusal = RefusalKind.NOT_OPEN.value
    for _ in range(500):
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await run.decide(gate, actor=OTHER)
        assert isinstance(failed.value.cause, ApplicationError)
        refusal = failed.value.cause.type or ""
        if refusal != RefusalKind.NOT_OPEN.value:
            break
        await asyncio.sleep(0.01)
    assert refusal == RefusalKind.ALREADY_APPROVED.value
    await run.refused(run.decide(gate, actor=SUBMITTER), RefusalKind.FOUR_EYES)
    await run.decide(gate)
    assert await run.ended() == "completed"
    decided = next(e for e in run.script.events if e.action is EventAction.GATE_DECIDED)
    assert (decided.data["approvals"], decided.data["approvals_needed"]) == ([OTHER, APPROVER], 2)


# --- a model step's run records itself (two activations per approval) ----------------------


async def test_an_approved_model_step_records_its_decision_start_answer_and_next_gate(start: Start) -> None:
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW), budgeted=False)
    await run.decide(await run.script.gate(GateKind.PLAN))
    first = await run.script.gate(GateKind.STEP, seen=1)
    writes = run.script.local_writes
    recorded = await run.handle.execute_update(TaskWorkflow.decide, _approval(first))
    assert recorded is False  # the step's run records it: the web waits for the read model
    second = await run.script.gate(GateKind.STEP, seen=2)
    assert second.step_id == "s_1"
    tail = run.script.actions()[-5:]
    assert tail == ["gate.decided", "step.started", "step.finished", "step.completed", "gate.opened"]
    assert run.script.local_writes == writes  # the workflow wrote none of it
    await run.decide(second)
    assert await run.ended() == "completed"
    keys = [e.key for e in run.script.events]
    assert len(keys) == len(set(keys))


async def test_a_run_that_cannot_write_its_start_leaves_the_decision_to_the_workflow(start: Start) -> None:
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW), budgeted=False, refuse_first=True)
    await run.decide(await run.script.gate(GateKind.PLAN))
    await run.decide(await run.script.gate(GateKind.STEP, seen=1))
    assert await run.ended() == "failed"  # the chain changed: the task stops, as before
    actions = run.script.actions()
    assert actions[-3:] == ["gate.decided", "step.started", "task.failed"]  # the decision is kept


async def test_an_answer_the_run_could_not_write_is_written_by_the_workflow(start: Start) -> None:
    run = await start(
        AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW), budgeted=False, unrecorded_answers=1
    )
    await run.decide(await run.script.gate(GateKind.PLAN))
    writes = run.script.local_writes
    await run.decide(await run.script.gate(GateKind.STEP, seen=1))
    second = await run.script.gate(GateKind.STEP, seen=2)
    assert run.script.local_writes == writes + 1  # the answer and the next gate, as prepared
    finished = [e for e in run.script.events if e.action is EventAction.STEP_FINISHED]
    assert [e.output for e in finished] == ["done"]
    await run.decide(second)
    assert await run.ended() == "completed"


async def test_a_gate_opened_with_the_answer_stays_open_when_the_slider_moved_meanwhile(start: Start) -> None:
    hold = asyncio.Event()
    run = await start(
        AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW, Risk.LOW), budgeted=False, hold=hold
    )
    await run.decide(await run.script.gate(GateKind.PLAN))
    await run.decide(await run.script.gate(GateKind.STEP, seen=1))
    await run.script.until(lambda: "step.started" in run.script.actions(), "the step's start")
    move = AutonomyChange(AutonomyLevel.AUTONOMOUS, actor=SUBMITTER, role=Role.MEMBER, message_id="a-1")
    moving = asyncio.ensure_future(run.handle.execute_update(TaskWorkflow.set_autonomy, move))
    await _accepted(run, "set_autonomy", 1)  # it waits for the run to give the head back
    hold.set()
    await moving  # recorded once the run gave the head back
    second = await run.script.gate(GateKind.STEP, seen=2)
    actions = run.script.actions()
    assert actions.index("gate.opened", actions.index("step.finished")) < actions.index("autonomy.changed")
    await run.decide(second)  # opened before the move: asked, as any open gate is
    assert await run.ended() == "completed"
    assert len(run.script.gates()) == 3  # the third step followed the new level: no gate


async def test_no_output_gate_when_the_answer_completed_the_step_before_the_slider_moved(
    start: Start,
) -> None:
    hold = asyncio.Event()
    run = await start(AutonomyLevel.AUTONOMOUS, steps(Risk.LOW, Risk.LOW), budgeted=False, hold=hold)
    await run.script.until(lambda: "step.started" in run.script.actions(), "the first step's start")
    move = AutonomyChange(AutonomyLevel.MANUAL, actor=SUBMITTER, role=Role.MEMBER, message_id="a-1")
    moving = asyncio.ensure_future(run.handle.execute_update(TaskWorkflow.set_autonomy, move))
    await _accepted(run, "set_autonomy", 1)  # it waits for the run to give the head back
    hold.set()
    await moving
    gate = await run.script.gate(GateKind.STEP)  # manual now: the second step waits
    assert gate.step_id == "s_1"
    actions = run.script.actions()
    assert actions.index("step.completed") < actions.index("autonomy.changed") < actions.index("gate.opened")
    await run.decide(gate)
    await run.decide(await run.script.gate(GateKind.OUTPUT, seen=1))
    assert await run.ended() == "completed"


async def test_a_decision_on_the_gate_opened_with_the_answer_lands_before_the_workflow_heard(
    start: Start,
) -> None:
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW), budgeted=False)
    await run.decide(await run.script.gate(GateKind.PLAN))
    first = await run.script.gate(GateKind.STEP, seen=1)
    run.script.hold_answered = asyncio.Event()
    await run.decide(first)
    second = await run.script.gate(GateKind.STEP, seen=2)  # written by the run, which has not returned
    deciding = asyncio.ensure_future(run.decide(second))  # decidable from the moment it was made
    await _accepted(run, "decide", 3)
    run.script.hold_answered.set()
    await deciding
    assert await run.ended() == "completed"
    assert run.script.actions().count("gate.decided") == 3


async def test_cancel_while_a_step_runs_closes_the_gate_opened_with_its_answer(start: Start) -> None:
    hold = asyncio.Event()
    run = await start(AutonomyLevel.SUPERVISED, steps(Risk.LOW, Risk.LOW), budgeted=False, hold=hold)
    await run.decide(await run.script.gate(GateKind.PLAN))
    await run.decide(await run.script.gate(GateKind.STEP, seen=1))
    await run.script.until(lambda: "step.started" in run.script.actions(), "the step's start")
    await run.handle.signal(TaskWorkflow.cancel, CancelRequest(SUBMITTER, message_id="c-1"))
    hold.set()
    assert await run.ended() == "cancelled"
    ended = run.script.events[-1]
    assert ended.action is EventAction.TASK_CANCELLED and ended.close_gate


def _approval(gate: Gate) -> Decision:
    return Decision(
        gate.id, DecisionAction.APPROVE, actor=APPROVER, role=Role.APPROVER, message_id=uuid.uuid4().hex
    )


async def _accepted(run: Run, update: str, count: int) -> None:
    """Until the workflow has accepted `count` updates of this name (it may still be waiting)."""
    for _ in range(1000):
        history = await run.handle.fetch_history()
        names = [
            e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]
        if names.count(update) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{update} was not accepted {count} times")


async def test_a_question_waits_even_at_autonomous_and_the_step_runs_again_once_answered(
    start: Start,
) -> None:
    run: Run = await start(AutonomyLevel.AUTONOMOUS, steps(Risk.LOW), questions=2)
    first = await run.script.gate(GateKind.QUESTION)
    assert (first.question, first.choices, first.reason, first.four_eyes) == (
        "Which tone?",
        ["Warm", "Dry"],
        "unsure",
        False,
    )
    off = Decision(first.id, DecisionAction.ANSWER, SUBMITTER, Role.MEMBER, answer="Wet", message_id="m0")
    await run.refused(run.handle.execute_update(TaskWorkflow.decide, off), RefusalKind.INVALID)
    answer = Decision(first.id, DecisionAction.ANSWER, SUBMITTER, Role.MEMBER, answer="Warm", message_id="m1")
    await run.handle.execute_update(TaskWorkflow.decide, answer)  # the submitter, a member, answers
    second = await run.script.gate(GateKind.QUESTION, seen=1)  # it may ask again
    again = Decision(second.id, DecisionAction.ANSWER, OTHER, Role.MEMBER, answer="Dry", message_id="m2")
    await run.handle.execute_update(TaskWorkflow.decide, again)
    assert await run.ended() == "completed"
    assert [c for c, _ in run.script.calls].count(ANSWER_STEP_ACTIVITY) == 3
    decided = [e for e in run.script.events if e.action is EventAction.GATE_DECIDED]
    assert [(e.actor, e.data["action"], e.data["answer"]) for e in decided] == [
        (f"user:{SUBMITTER}", "answer", "Warm"),
        (f"user:{OTHER}", "answer", "Dry"),
    ]
    opened = [e for e in run.script.events if e.action is EventAction.GATE_OPENED]
    assert opened[0].actor == "model:script" and opened[0].data["question"] == "Which tone?"


async def test_an_unanswered_question_fails_closed(start: Start) -> None:
    run: Run = await start(AutonomyLevel.AUTONOMOUS, steps(Risk.LOW), questions=1)
    await run.script.gate(GateKind.QUESTION)
    assert await run.ended() == "rejected"  # the server skips both 24-hour deadlines
    assert run.script.actions()[-4:] == ["gate.opened", "gate.escalated", "gate.decided", "task.rejected"]
