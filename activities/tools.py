"""The tools a `tool` step can run (the catalogue is exosuit/domain/tools.py).

Local tools (`write_file`, `word_count`) stay inside the task's workspace; the acting ones
(`http_request`, `send_email`, every MCP server's tools) reach what tools.toml allows.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from activities.acting import ToolRefused, http_request, masked, send_email
from activities.mcp_tools import McpTools
from exosuit.domain.task import StepKind
from exosuit.domain.tools import MCP_PREFIX, PREVIOUS_RESULT, ArgsInvalid, Catalogue, ToolSpec, resolve_args
from exosuit.storage.tables import Step
from exosuit.storage.tasks import TaskView
from exosuit.tooling import ToolsConfig


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "document"


class ToolRunner:
    """Runs tools: local ones inside one workspace folder per task under the data dir."""

    def __init__(
        self,
        workspace: Path,
        config: ToolsConfig | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._workspace = workspace
        self.config = config or ToolsConfig()
        self._env: Mapping[str, str] = env or {}
        self.mcp = McpTools(self.config, self._env)

    async def catalogue(self) -> Catalogue:
        """What a plan may use now: the built-ins configured, and the MCP servers' tools."""
        return self.config.catalogue(await self.mcp.discover())

    async def spec(self, name: str | None) -> ToolSpec | None:
        if name is None:
            return None
        if name.startswith(MCP_PREFIX):
            return await self.mcp.spec(name)
        return self.config.builtin_specs().get(name)

    async def run(self, step: Step, view: TaskView) -> str:
        if step.tool == "write_file":
            return await asyncio.to_thread(self._write_file, step, view)
        if step.tool == "word_count":
            return self._word_count(step, view)
        raise LookupError(f"unknown tool {step.tool!r}")

    async def act(self, spec: ToolSpec, step: Step, view: TaskView, key: str) -> str:
        """Run an acting tool with the step's arguments (checked again here), once."""
        args = self.checked_args(spec, step, view)
        if spec.name == "http_request":
            return await http_request(self.config, args, key, self._env)
        if spec.name == "send_email":
            return await send_email(self.config, args, key, self._env)
        return masked(await self.mcp.call(spec.name, args, key), self.config, self._env)

    def checked_args(self, spec: ToolSpec, step: Step, view: TaskView) -> dict[str, Any]:
        """The step's arguments with earlier results filled in, against schema and policy."""
        args = resolve_args(step.args or {}, previous_output(step, view))
        try:
            return self.config.catalogue([spec]).check_args(spec, args)
        except ArgsInvalid as exc:
            raise ToolRefused(str(exc)) from None

    def _write_file(self, step: Step, view: TaskView) -> str:
        folder = self._workspace / view.task.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{step.index + 1:02d}-{_slug(step.title)}.md"
        content = step.instructions.replace(PREVIOUS_RESULT, previous_output(step, view))
        path.write_text(content)
        return f"wrote {len(content.encode())} bytes to {path.relative_to(self._workspace)}"

    def _word_count(self, step: Step, view: TaskView) -> str:
        text = previous_output(step, view)
        return f"{len(text.split())} words, {len(text.splitlines())} lines, {len(text)} characters"


def previous_output(step: Step, view: TaskView) -> str:
    """The latest text a model wrote before this step ('' if none): what "it" means in
    "draft the post, count the words and save it" (a word count is not what to save)."""
    earlier = [s.output for s in view.steps if s.index < step.index and s.output and s.kind == StepKind.LLM]
    return earlier[-1] if earlier else ""
