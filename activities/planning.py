"""The planner: ask the model for a plan (structured output), validate it, store it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from temporalio import activity

from activities.errors import model_errors
from activities.heartbeats import beating
from activities.metering import count_call, meter
from activities.recording import Wake, write_first
from activities.tools import ToolRunner
from exosuit.domain.audit import SYSTEM_ACTOR
from exosuit.domain.contracts import (
    DRAFT_INSTRUCTIONS_ACTIVITY,
    DRAFT_PLAN_ACTIVITY,
    Answer,
    NewStep,
    PlanDraft,
    PlanRequest,
    StepRequest,
)
from exosuit.domain.plan import MAX_STEPS, PlanInvalid, PlanStep, parse_plan, plan_json_schema
from exosuit.domain.rules_planner import rules_plan
from exosuit.domain.tools import TOOLS, ArgsInvalid, Catalogue, args_text
from exosuit.llm.client import ModelClient
from exosuit.storage.events import EventWriter
from exosuit.storage.tables import Step
from exosuit.storage.tasks import Tasks, TaskView

PLANNER_PROMPT = """You plan work for Exosuit. Break the user's task into a short list of \
concrete steps that, done in order, complete it. Each step has a title, instructions \
precise enough to carry out alone, a kind ("llm" for writing or reasoning by a model, \
"tool" to use one of the tools below), the tool's name (null for llm steps), a risk \
(low, medium or high: how much harm a wrong result could do) and, for a tool that takes \
them, its args: a JSON object matching the tool's args schema (null for the others).
Tools:
{tools}
Answer with JSON only: {{"steps": [{{"title", "instructions", "kind", "tool", "risk", "args"}}, ...]}}."""

REDRAFT_PROMPT = """You revise one step of a plan after a reviewer rejected it. Answer with \
the step's new instructions only, no preamble."""

REDRAFT_ARGS_PROMPT = """You revise the arguments of one tool step after a reviewer rejected \
them. Answer with the new arguments only: one JSON object matching the tool's args schema."""


@dataclass(frozen=True)
class PlannerConfig:
    """How long a plan answer may be, and how many steps a valid plan has."""

    max_tokens: int | None = None
    min_steps: int = 1
    max_steps: int = MAX_STEPS


class PlannerActivities:
    def __init__(
        self,
        model: ModelClient,
        tasks: Tasks,
        writer: EventWriter,
        config: PlannerConfig | None = None,
        tools: ToolRunner | None = None,
        wake: Wake | None = None,
    ) -> None:
        self._model = model
        self._tasks = tasks
        self._writer = writer
        self._config = config or PlannerConfig()
        self._tools = tools
        self._wake = wake  # the outbox's workflows, after a write that queued messages

    async def _catalogue(self) -> Catalogue:
        return await self._tools.catalogue() if self._tools else Catalogue()

    @activity.defn(name=DRAFT_PLAN_ACTIVITY)
    async def draft_plan(self, request: PlanRequest) -> PlanDraft:
        """A plan from the model (or the rules planner), validated; the workflow records it.
        A first attempt records the planning's start (`request.first`) before anything else."""
        started = await write_first(self._writer, request.first, self._wake, "the planning's start")
        draft = await self._draft(request)
        draft.started = started
        return draft

    async def _draft(self, request: PlanRequest) -> PlanDraft:
        view = await self._tasks.task(request.task_id)
        if view is None:
            raise LookupError(f"task {request.task_id} does not exist")
        planner, provider = self._model.plan_with
        if request.fallback:
            return self._rules(view, request, f"the model gave no valid plan: {request.validation_error}")
        if planner == "rules":
            return self._rules(view, request, f"provider {provider} plans with rules (plan_with)")
        config = self._config
        catalogue = await self._catalogue()
        names = sorted(catalogue.specs)
        async with beating(), model_errors(self._tasks, request.task_id):
            completion = await self._model.complete(
                self._messages(view, request, catalogue),
                schema=lambda dialect: plan_json_schema(dialect, config.min_steps, config.max_steps, names),
                max_tokens=config.max_tokens,
            )
        count_call(completion, "plan")
        actor = f"model:{completion.model}"
        call = await meter(self._writer, request, completion, "plan")
        try:
            steps = parse_plan(completion.text, config.min_steps, config.max_steps, catalogue)
        except PlanInvalid as exc:
            data = {"attempt": request.attempt, "error": str(exc)}
            return PlanDraft(actor, data, error=str(exc), call=call)
        data = {"planner": "model", "attempt": request.attempt}
        return PlanDraft(actor, data, steps=_with_ids(steps, catalogue), call=call)

    def _rules(self, view: TaskView, request: PlanRequest, why: str) -> PlanDraft:
        """The rules planner, at once; the history says it planned, and why."""
        task = view.task
        instructions = task.instructions
        if request.feedback:  # it plans the same again; the reviewer's reason goes to every step
            instructions += f"\n\nThe reviewer's note on the plan: {request.feedback}"
        steps = rules_plan(task.title, instructions, TOOLS)
        data = {"planner": "rules", "reason": why, "attempt": request.attempt}
        return PlanDraft(SYSTEM_ACTOR, data, steps=_with_ids(steps))

    def _messages(
        self, view: TaskView, request: PlanRequest, catalogue: Catalogue | None = None
    ) -> list[dict[str, str]]:
        task = view.task
        tools = (catalogue or Catalogue()).described()
        messages = [
            {"role": "system", "content": PLANNER_PROMPT.format(tools=tools)},
            {"role": "user", "content": f"Task: {task.title}\n\n{task.instructions}"},
        ]
        if request.feedback:
            messages.append(
                {
                    "role": "user",
                    "content": f"A reviewer rejected the previous plan: {request.feedback}\n"
                    "Plan again, taking this into account.",
                }
            )
        if request.validation_error:
            messages.append(
                {
                    "role": "user",
                    "content": f"Your previous answer was not a valid plan: "
                    f"{request.validation_error}\nAnswer again with a valid plan.",
                }
            )
        return messages

    @activity.defn(name=DRAFT_INSTRUCTIONS_ACTIVITY)
    async def draft_instructions(self, request: StepRequest) -> Answer:
        """The step's instructions redrafted with the reviewer's reason; the workflow records them."""
        view, step = await self._tasks.step(request.task_id, request.step_id)
        if step.args is not None:
            return await self._redraft_args(request, view, step)
        async with beating(), model_errors(self._tasks, request.task_id):
            completion = await self._model.complete(
                [
                    {"role": "system", "content": REDRAFT_PROMPT},
                    {
                        "role": "user",
                        "content": f"Task: {view.task.title}\n\nStep: {step.title}\n"
                        f"Current instructions:\n{step.instructions}\n\n"
                        f"The reviewer's reason for rejecting them: {request.feedback}",
                    },
                ]
            )
        count_call(completion, "redraft")
        call = await meter(self._writer, request, completion, "redraft", step.id)
        text = completion.text.strip() or step.instructions
        return Answer(text, f"model:{completion.model}", {"reason": request.feedback}, call)

    async def _redraft_args(self, request: StepRequest, view: TaskView, step: Step) -> Answer:
        """A tool step's arguments redrafted with the reason, checked like a plan's."""
        catalogue = await self._catalogue()
        spec = catalogue.spec(step.tool)
        schema = spec.input_schema if spec else None
        async with beating(), model_errors(self._tasks, request.task_id):
            completion = await self._model.complete(
                [
                    {"role": "system", "content": REDRAFT_ARGS_PROMPT},
                    {
                        "role": "user",
                        "content": f"Task: {view.task.title}\n\nStep: {step.title} (tool {step.tool})\n"
                        f"{step.instructions}\n\nArgs schema: {json.dumps(schema)}\n"
                        f"Current args:\n{args_text(step.args)}\n\n"
                        f"The reviewer's reason for rejecting them: {request.feedback}",
                    },
                ]
            )
        count_call(completion, "redraft")
        call = await meter(self._writer, request, completion, "redraft", step.id)
        actor, data = f"model:{completion.model}", {"reason": request.feedback}
        try:
            args = json.loads(completion.text, strict=False)
            if spec is None:
                raise ArgsInvalid(f"tool {step.tool} is not configured")
            args = catalogue.check_args(spec, args)
        except (ValueError, ArgsInvalid) as exc:  # the gate opens again on the same args
            return Answer(step.instructions, actor, data | {"error": f"the redrafted args: {exc}"}, call)
        return Answer(step.instructions, actor, data, call, args=args)


def _with_ids(steps: list[PlanStep], catalogue: Catalogue | None = None) -> list[NewStep]:
    new = []
    for step in steps:
        spec = catalogue.spec(step.tool) if catalogue and step.args is not None else None
        info = {"description": spec.description, "input_schema": spec.input_schema} if spec else None
        new.append(NewStep(f"s_{uuid.uuid4().hex[:16]}", **step.model_dump(), tool_info=info))
    return new
