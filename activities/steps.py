"""Running one step: the model for `llm` steps, a tool for `tool` steps."""

from __future__ import annotations

from temporalio import activity

from activities.model import ModelClient
from activities.planning import call_record
from activities.tools import ToolRunner
from exosuit.contracts import RUN_STEP_ACTIVITY, StepRequest, StepResult, TaskEvent
from exosuit.models import Step
from exosuit.store import TaskStore, TaskView

STEP_PROMPT = """You carry out one step of a larger task for Exosuit. Do exactly what the \
step's instructions say and answer with the result only."""
CONTEXT_CHARS = 4_000  # of each earlier step's output, to keep prompts bounded


class StepActivities:
    def __init__(
        self, model: ModelClient, store: TaskStore, tools: ToolRunner, max_tokens: int | None = None
    ) -> None:
        self._model = model
        self._store = store
        self._tools = tools
        self._max_tokens = max_tokens

    @activity.defn(name=RUN_STEP_ACTIVITY)
    async def run_step(self, request: StepRequest) -> StepResult:
        if await self._store.seen(request.task_id, request.key):
            return StepResult(ok=True)
        view, step = await self._store.step(request.task_id, request.step_id)
        if step.kind == "tool":
            output = await self._tools.run(step, view)
            await self._store.apply(
                TaskEvent(
                    request.task_id,
                    request.key,
                    "system",
                    "step.finished",
                    data={"tool": step.tool},
                    step_id=step.id,
                    output=output,
                )
            )
            return StepResult(ok=True, summary=output[:200])
        completion = await self._model.complete(
            self._messages(view, step, request.feedback), max_tokens=self._max_tokens
        )
        await self._store.apply(
            TaskEvent(
                request.task_id,
                request.key,
                f"model:{completion.model}",
                "step.finished",
                data={"feedback": request.feedback} if request.feedback else {},
                step_id=step.id,
                output=completion.text,
            ),
            call_record(request.key, "step", completion, step.id),
        )
        return StepResult(ok=True, summary=completion.text[:200])

    def _messages(self, view: TaskView, step: Step, feedback: str | None) -> list[dict[str, str]]:
        earlier = "\n\n".join(
            f"Step {s.index + 1}, {s.title}:\n{(s.output or '')[:CONTEXT_CHARS]}"
            for s in view.steps
            if s.index < step.index and s.status == "completed"
        )
        parts = [f"Task: {view.task.title}"]
        if earlier:
            parts.append(f"Results of earlier steps:\n{earlier}")
        parts.append(f"Your step ({step.index + 1}): {step.title}\nInstructions:\n{step.instructions}")
        if feedback:
            parts.append(
                f"A reviewer rejected your previous output:\n{step.output or ''}\n\n"
                f"Their reason: {feedback}\nDo the step again, taking this into account."
            )
        return [
            {"role": "system", "content": STEP_PROMPT},
            {"role": "user", "content": "\n\n".join(parts)},
        ]
