"""A tool step's execution, exactly once per key.

The ledger gets the attempt before the call and the result after it. A key already
completed answers its recorded result without running again (a retried activity, a worker
that crashed after the call); a key whose attempt has no result was sent, or may have been,
by a worker that died: it answers "sent, result unknown", and the workflow asks a person.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.acting import NothingSent, ToolRefused
from activities.heartbeats import beating
from activities.mcp_tools import ServerDown
from activities.tools import ToolRunner
from exosuit.domain.audit import SYSTEM_ACTOR
from exosuit.domain.contracts import ARGS_CHANGED, CALL_TOOL_ACTIVITY, TOOL_REFUSED, Answer, ToolCall
from exosuit.domain.task import StepKind
from exosuit.domain.tools import args_hash
from exosuit.storage.tasks import Tasks
from exosuit.storage.tool_ledger import COMPLETED, FAILED, SENDING, ToolLedger

TOOL_DOWN = "ToolUnreachable"  # retried: the server may come back


class ToolActivities:
    def __init__(
        self, tasks: Tasks, ledger: ToolLedger, tools: ToolRunner, record_delay_seconds: float = 0.0
    ) -> None:
        self._tasks = tasks
        self._ledger = ledger
        self._tools = tools
        self._record_delay = record_delay_seconds  # fault injection: the gap a crash may fall into

    @activity.defn(name=CALL_TOOL_ACTIVITY)
    async def call_tool(self, call: ToolCall) -> Answer:
        """Run the step's tool with the approved arguments, once per key; the workflow records it."""
        view, step = await self._tasks.step(call.task_id, call.step_id)
        if step.kind != StepKind.TOOL or step.tool is None:
            raise ApplicationError(f"step {step.id} is not a tool step", non_retryable=True)
        data: dict[str, Any] = {"tool": step.tool, "key": call.key}
        digest = args_hash(step.args) if step.args is not None else None
        if digest != call.args_sha256:
            raise ApplicationError(
                f"the arguments of step {step.index + 1} are not the ones approved "
                f"(sha256 {digest} ≠ {call.args_sha256}); nothing was sent",
                type=ARGS_CHANGED,
                non_retryable=True,
            )
        if step.args is None:  # a local tool: no world to reach, nothing to guard
            async with beating():
                return Answer(await self._tools.run(step, view), SYSTEM_ACTOR, data)
        try:
            spec = await self._tools.spec(step.tool)
        except ServerDown as exc:
            raise ApplicationError(str(exc), type=TOOL_DOWN) from None
        if spec is None:
            raise ApplicationError(
                f"tool {step.tool} is not configured in tools.toml", type=TOOL_REFUSED, non_retryable=True
            )
        try:
            self._tools.checked_args(spec, step, view)  # refused before anything is claimed
        except ToolRefused as exc:
            raise ApplicationError(str(exc), type=TOOL_REFUSED, non_retryable=True) from None
        claim = await self._ledger.claim(
            call.key,
            task_id=call.task_id,
            step_id=call.step_id,
            tool=step.tool,
            args_sha256=digest or "",
            resend=call.resend,
        )
        if not claim.fresh:
            if claim.status == SENDING:
                return Answer(
                    "sent, result unknown", SYSTEM_ACTOR, data | {"outcome": "unknown"}, unknown=True
                )
            outcome = "refused" if claim.status == FAILED else "completed"
            return Answer(claim.result or "", SYSTEM_ACTOR, data | {"outcome": outcome, "repeat": True})
        data["attempt"] = claim.attempts
        try:
            async with beating():
                result = await self._tools.act(spec, step, view, call.key)
        except (NothingSent, ServerDown) as exc:
            await self._ledger.release(call.key)
            raise ApplicationError(str(exc), type=TOOL_DOWN) from None
        except ToolRefused as exc:
            await self._ledger.settle(call.key, FAILED, f"refused: {exc}")
            raise ApplicationError(str(exc), type=TOOL_REFUSED, non_retryable=True) from None
        if self._record_delay:
            async with beating():
                await asyncio.sleep(self._record_delay)
        await self._ledger.settle(call.key, COMPLETED, result)
        return Answer(result, SYSTEM_ACTOR, data | {"outcome": "completed"})
