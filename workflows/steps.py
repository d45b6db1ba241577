"""Walking one step: its cost gate, its step gate, running it, its output gate.

A model step's run records itself: its activity writes the step's start (with the approval
that let it run) before it calls the model, and the answer with what the level says comes
next (the output gate, or the step's completion and the next step's gate) after, so an
approval costs the workflow two activations; what the activity could not write, the
workflow writes (the same events, by their keys), so no decision or paid answer is lost.
When the model asks a person instead (ask_human), or the step is a planned question, the
step waits at a question gate and runs again once the answer is recorded; the workflow
records that run's answer.
A tool step runs once under its execution key (the attempt recorded before, the result
after); if a crash left its result unknown, a person decides at the step's gate whether to
send it again (same key) or not.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from exosuit.domain.autonomy import GateKind, gate_required
    from exosuit.domain.contracts import (
        ANSWER_STEP_ACTIVITY,
        CALL_TOOL_ACTIVITY,
        COST_CHECK_ACTIVITY,
        DRAFT_INSTRUCTIONS_ACTIVITY,
        Answer,
        CostCheck,
        StepRequest,
        TaskEvent,
        TaskInput,
        ToolCall,
        answered,
    )
    from exosuit.domain.decisions import Verdict
    from exosuit.domain.task import EventAction, StepKind, StepStatus, TaskStatus
    from exosuit.domain.task_state import DONE, StepState, TaskState
    from exosuit.domain.tools import ASK_HUMAN, args_hash, execution_key
    from workflows.gates import GO, GateKeeper, Ruling
    from workflows.policies import STORE_WRITE, model_call, tool_call
    from workflows.recorder import Recorder

Outcome = tuple[TaskStatus, str | None]  # how the task ends, and the reason when there is one
ENDING = {Verdict.STOP: TaskStatus.REJECTED, Verdict.CANCELLED: TaskStatus.CANCELLED}


class StepWalker:
    def __init__(self, task: TaskInput, state: TaskState, recorder: Recorder, gates: GateKeeper) -> None:
        self._task = task
        self._state = state
        self._recorder = recorder
        self._gates = gates
        self._wait = timedelta(seconds=task.model_wait_seconds)
        self._completed: str | None = None  # the step whose run recorded its completion
        self._checked: dict[str, CostCheck] = {}  # a step's cost, checked by the run before it

    async def walk(self, step: StepState) -> Outcome | None:
        """Cost gate, step gate, run, output gate; an outcome if the task ends here.
        A run continued as new inside a gate loop comes back to that gate."""
        at_output = self._gates.resuming(GateKind.OUTPUT, step)
        # The step gate is open already: the run before, or the last step's run, opened it
        # (which it does only where no cost check comes first).
        at_step = self._gates.resuming(GateKind.STEP, step) or self._gates.opened_ahead(GateKind.STEP, step)
        ruling = GO if at_output or at_step else await self._cost_gate(step)
        if ruling.go and not at_output:
            ruling = await self._gates.until_approved(GateKind.STEP, step, partial(self._redraft, step))
        if ruling.go:
            # not_sent: a tool call a person chose not to send again; at_output: already ran
            not_sent = None if at_output else await self._run(step, None)
            if self._completed == step.id:  # recorded with the answer: no output gate was due
                step.status = StepStatus.COMPLETED
                return None
            redo = partial(self._run, step)
            ruling = not_sent or await self._gates.until_approved(GateKind.OUTPUT, step, redo)
        if not ruling.go:
            return await self._leave(step, ruling)
        step.status = StepStatus.COMPLETED
        await self._recorder.record(
            EventAction.STEP_COMPLETED, step_id=step.id, step_status=StepStatus.COMPLETED, defer=True
        )
        return None

    async def _cost_gate(self, step: StepState) -> Ruling:
        """A model step that may cross a budget waits for a person, whatever the level.
        Without a budget (as the last record saw it) there is nothing to check."""
        if step.kind is not StepKind.LLM or not self._state.budgeted:
            return GO
        check = self._checked.pop(step.id, None)  # by the run before, once its cost was written
        if check is None:
            await self._recorder.flush()  # the check reads what was spent
            check = await workflow.execute_local_activity(
                COST_CHECK_ACTIVITY,
                StepRequest(self._task.task_id, step.id, self._recorder.next_key()),
                result_type=CostCheck,
                **STORE_WRITE,
            )
        if check.crosses is None:
            return GO
        return await self._gates.ruling(GateKind.COST, step, check.crosses)

    async def _leave(self, step: StepState, ruling: Ruling) -> Outcome | None:
        """Skip the step (the task goes on), or end the task."""
        if ruling.verdict is not Verdict.SKIP:
            return ENDING[ruling.verdict], ruling.reason
        step.status = StepStatus.SKIPPED
        await self._recorder.record(EventAction.STEP_SKIPPED, step_id=step.id, step_status=StepStatus.SKIPPED)
        return None

    async def _redraft(self, step: StepState, reason: str | None) -> None:
        """A `revise` at the step gate: the model redrafts the instructions (or a tool's args)."""
        answer = await self._answer(DRAFT_INSTRUCTIONS_ACTIVITY, step, reason)
        await self._recorder.record(
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

    async def _run(self, step: StepState, feedback: str | None) -> Ruling | None:
        """Run the step (again, with the reviewer's feedback); a ruling if a tool step's
        unknown result was not approved for sending again, or a question was not answered."""
        if step.kind is not StepKind.TOOL:
            return await self._run_model(step, feedback)
        await self._recorder.record(
            EventAction.STEP_STARTED,
            status=TaskStatus.RUNNING,
            step_id=step.id,
            step_status=StepStatus.RUNNING,
        )
        if step.tool == ASK_HUMAN.name:  # a planned question: never sent to a tool
            return await self._until_answered(
                step, await self._answer(ANSWER_STEP_ACTIVITY, step, None), None
            )
        return await self._call_tool(step)

    async def _run_model(self, step: StepState, feedback: str | None) -> Ruling | None:
        """The model's answer, recorded by its activity: the start before the call (`first`),
        the answer and what follows it after (`then`). What it could not write (its answer
        says), the workflow writes: the same events, so a write that did land is not repeated."""
        recorder = self._recorder
        started = recorder.event(
            EventAction.STEP_STARTED,
            status=TaskStatus.RUNNING,
            step_id=step.id,
            step_status=StepStatus.RUNNING,
        )
        key = recorder.next_key()
        async with recorder.handing_over(started) as first:
            then, check_next, next_gate = self._then(step)
            request = StepRequest(
                self._task.task_id, step.id, key, feedback, first, then, check_next, next_gate
            )
            try:
                answer: Answer = await workflow.execute_activity(
                    ANSWER_STEP_ACTIVITY, request, result_type=Answer, **model_call(self._wait)
                )
            except ActivityError:
                self._gates.drop_ahead()
                await recorder.write(first)  # the decision that let it run stays recorded
                raise
            if answer.recorded is not None:
                recorder.adopt(answer.recorded)
                self._next_checked(check_next, answer.next_cost)
            else:  # the run wrote its start at most: it asks first, or its answer's write failed
                if answer.question is not None or next_gate is not None:
                    self._gates.drop_ahead()  # not reached after a question; not checked otherwise
                await recorder.took(first, answer.started)
                if answer.question is None:  # the workflow records what the run did not
                    then[0] = answered(then[0], answer)
                    then[0].after = self._state.head
                    await recorder.write(then)
        if answer.question is not None:
            return await self._until_answered(step, answer, feedback)
        if any(e.action is EventAction.STEP_COMPLETED for e in then):
            self._completed = step.id
        return None

    async def _until_answered(self, step: StepState, answer: Answer, feedback: str | None) -> Ruling | None:
        """While the step asks, a question gate (whatever the level), then the step again with
        the answer; its final answer recorded here, with what follows it."""
        while answer.question is not None:
            ruling = await self._gates.ask(step, answer)
            if not ruling.go:
                return ruling
            answer = await self._answer(ANSWER_STEP_ACTIVITY, step, feedback)
        await self._recorder.record(
            EventAction.STEP_FINISHED,
            actor=answer.actor,
            data=answer.data,
            step_id=step.id,
            output=answer.text,
            call=answer.call,
            defer=True,  # with what comes next: an output gate, or step.completed and on
        )
        return None

    def _then(self, step: StepState) -> tuple[list[TaskEvent], str | None, TaskEvent | None]:
        """What follows the step's answer, as the level says now: its output gate; or, on the
        first run, its completion and the next step's gate. A next model step of a budgeted
        task has its cost checked by the run first (that step, and its gate to write if within
        budget, come apart). A gate opened here is decidable at once; the flow comes to it
        after the answer."""
        finished = self._recorder.event(EventAction.STEP_FINISHED, step_id=step.id)
        level = self._state.level
        if gate_required(GateKind.OUTPUT, level, step.risk):
            opened = self._gates.ahead(GateKind.OUTPUT, step)
            return [finished, *([opened] if opened else [])], None, None
        if self._gates.walking is not None:  # a revision's run: the gate loop goes on from here
            return [finished], None, None
        completed = self._recorder.event(
            EventAction.STEP_COMPLETED, step_id=step.id, step_status=StepStatus.COMPLETED
        )
        after = next((s for s in self._state.steps if s.index > step.index and s.status not in DONE), None)
        if after is None:  # the task ends: the workflow records how
            return [finished, completed], None, None
        checked = after.kind is StepKind.LLM and self._state.budgeted  # its cost check comes first
        gated = gate_required(GateKind.STEP, level, after.risk)
        opened = self._gates.ahead(GateKind.STEP, after) if gated else None
        if checked:
            return [finished, completed], after.id, opened
        return [finished, completed, *([opened] if opened else [])], None, None

    def _next_checked(self, step_id: str | None, check: CostCheck | None) -> None:
        """What the run said of the next step's cost: its gate, opened ahead, was written only
        within budget; unchecked, the flow checks it when it comes to that step."""
        if step_id is None:
            return
        if check is None or check.crosses is not None:
            self._gates.drop_ahead()  # a cost gate comes first, or the flow's own check
        if check is not None:
            self._checked[step_id] = check

    async def _answer(self, activity: str, step: StepState, feedback: str | None) -> Answer:
        await self._recorder.flush()
        request = StepRequest(self._task.task_id, step.id, self._recorder.next_key(), feedback)
        answer: Answer = await workflow.execute_activity(
            activity, request, result_type=Answer, **model_call(self._wait)
        )
        return answer

    # --- tool steps ------------------------------------------------------------------------

    async def _call_tool(self, step: StepState) -> Ruling | None:
        """Send the tool call under its key until its result is known (None), or a person
        decides not to send it again (their ruling)."""
        key = self._key(step)
        attempt: dict[str, Any] = {"tool": step.tool, "key": key, "args_sha256": step.args_sha256}
        resend = False
        while True:
            answer = await self._send(step, attempt, resend)
            if not answer.unknown:
                await self._recorder.record(
                    EventAction.STEP_FINISHED,
                    actor=answer.actor,
                    data=answer.data,
                    step_id=step.id,
                    output=answer.text,
                )
                return None
            await self._recorder.record(EventAction.TOOL_UNKNOWN, step_id=step.id, data=answer.data)
            ruling = await self._gates.ruling(GateKind.STEP, step, _unknown_result(step, attempt["key"]))
            if not ruling.go:
                return ruling
            resend = step.args_sha256 == attempt["args_sha256"]
            if not resend:  # edited at that gate: other arguments, a new execution and key
                attempt |= {"key": self._key(step), "args_sha256": step.args_sha256}

    def _key(self, step: StepState) -> str:
        """The execution key: the task, the step and the seq of the approval it runs under."""
        seq = self._gates.approved_at.get(step.id) or self._state.seq
        return execution_key(self._task.task_id, step.id, seq)

    async def _send(self, step: StepState, attempt: dict[str, Any], resend: bool) -> Answer:
        await self._recorder.record(
            EventAction.TOOL_CALLED, step_id=step.id, data=attempt | ({"resend": True} if resend else {})
        )
        call = ToolCall(self._task.task_id, step.id, attempt["key"], step.args_sha256, resend)
        answer: Answer = await workflow.execute_activity(
            CALL_TOOL_ACTIVITY, call, result_type=Answer, **tool_call(self._wait)
        )
        return answer


def _unknown_result(step: StepState, key: str) -> str:
    return (
        f"sent, result unknown: the worker stopped after sending {step.tool} (key {key}) and "
        "before recording its result. Check the other side; approve to send it again with "
        "the same key, or reject to skip or stop"
    )
