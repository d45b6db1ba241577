"""The tools a `tool` step can run (the catalogue is exosuit/domain/tools.py)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from exosuit.domain.task import StepKind
from exosuit.domain.tools import PREVIOUS_RESULT
from exosuit.storage.tables import Step
from exosuit.storage.tasks import TaskView


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "document"


class ToolRunner:
    """Runs tools inside one workspace folder per task under the data dir."""

    def __init__(self, workspace: Path) -> None:
        self._workspace = workspace

    async def run(self, step: Step, view: TaskView) -> str:
        if step.tool == "write_file":
            return await asyncio.to_thread(self._write_file, step, view)
        if step.tool == "word_count":
            return self._word_count(step, view)
        raise LookupError(f"unknown tool {step.tool!r}")

    def _write_file(self, step: Step, view: TaskView) -> str:
        folder = self._workspace / view.task.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{step.index + 1:02d}-{_slug(step.title)}.md"
        content = step.instructions.replace(PREVIOUS_RESULT, _previous_output(step, view))
        path.write_text(content)
        return f"wrote {len(content.encode())} bytes to {path.relative_to(self._workspace)}"

    def _word_count(self, step: Step, view: TaskView) -> str:
        text = _previous_output(step, view)
        return f"{len(text.split())} words, {len(text.splitlines())} lines, {len(text)} characters"


def _previous_output(step: Step, view: TaskView) -> str:
    """The latest text a model wrote before this step ('' if none): what "it" means in
    "draft the post, count the words and save it" (a word count is not what to save)."""
    earlier = [s.output for s in view.steps if s.index < step.index and s.output and s.kind == StepKind.LLM]
    return earlier[-1] if earlier else ""
