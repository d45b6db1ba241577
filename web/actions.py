"""What a person can do to a task, shared by the JSON API and the pages.

Each action raises a domain `Refused` (Forbidden, NotOpen, Invalid) that the API turns
into problem+json and the pages into a readable message.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from uuid import uuid4

from exosuit.domain import claims
from exosuit.domain.audit import ChainCheck, canonical_json
from exosuit.domain.autonomy import (
    AutonomyLevel,
    GateKind,
    can_approve,
    is_solo,
    may_answer,
    may_cancel,
    may_decide,
    may_resume,
)
from exosuit.domain.contracts import AutonomyChange, CancelRequest, Decision
from exosuit.domain.refusals import Finished, Forbidden, FourEyes, Invalid, NotOpen, Refused
from exosuit.domain.submissions import new_task_id
from exosuit.domain.task import EventAction, TaskStatus
from exosuit.domain.text import fingerprint
from exosuit.storage.db import DatabaseDown, utcnow
from exosuit.storage.identity import Principal
from exosuit.storage.tables import AuditEvent, Task
from exosuit.storage.tasks import DuplicateKey, TaskView, workflow_input
from web import tool_edits
from web.deps import Services
from web.errors import Unavailable
from web.schemas import DecisionIn, TaskCreate

CATCHING_UP_SECONDS = 2  # Retry-After of a decision on a gate the workflow has yet to replay

_HEAD_CATCH_UP_TRIES = 5
_RECORD_WAIT_SECONDS = 30.0  # an approval recorded by the step it starts: until the read model shows it


async def submit(
    services: Services, principal: Principal, body: TaskCreate, *, idempotency_key: str | None = None
) -> tuple[Task, bool]:
    """Store and start a task; with a key, the same key and body give the same task.

    Whether a new task may start is the one rule every path shares (`Tasks.admit`: the
    team's cap, its limit on active tasks, the person's rate); a replay is not a new task.
    Either the workflow starts or nothing is left behind: a row this request inserted is
    removed again when starting fails. A replay whose workflow never started starts it.
    Returns the task and whether it was an idempotent replay.
    """
    if principal.role_in(body.team) is None:
        raise Forbidden(f"you are not a member of team {body.team!r}")
    team = await services.directory.team(body.team)
    if team is None:
        raise Invalid(f"no team {body.team!r}")
    print_ = fingerprint(canonical_json(body.model_dump(mode="json")))
    task = await _existing(services, principal.email, idempotency_key, print_)
    replayed = task is not None
    inserted = False
    if task is None:
        await services.tasks.admit(team, principal.email, body.autonomy)
        task = Task(
            id=new_task_id(),
            title=body.title,
            instructions=body.instructions,
            team=body.team,
            submitted_by=principal.email,
            autonomy=body.autonomy,
            budget_usd=body.budget_usd,
            idempotency_key=idempotency_key,
            request_fingerprint=print_ if idempotency_key else None,
        )
        try:
            await services.tasks.insert(task)
            inserted = True
        except DuplicateKey:  # the same key raced in from a parallel request
            task = await _existing(services, principal.email, idempotency_key, print_)
            assert task is not None
            replayed = True
    solo = await solo_in(services, principal, team.name)
    try:
        await services.gateway.start(
            workflow_input(task, team, submitted_via=principal.token_name, solo=solo)
        )
    except Exception:
        # The workflow records task.submitted first, so a row without events never started:
        # it goes (if this request dies first, the reconciler starts it). A row with events
        # is a workflow that started although the call answered with an error (a timeout).
        if not inserted or await services.tasks.discard_unstarted(task.id):
            raise
    return task, replayed


async def solo_in(services: Services, principal: Principal, team: str) -> bool:
    """Whether the person's tasks in this team run solo: they are its only approver."""
    others = await services.directory.approvers_besides(team, principal.email)
    return is_solo(principal.role_in(team), others)


async def _existing(services: Services, email: str, key: str | None, print_: str) -> Task | None:
    if key is None:
        return None
    task = await services.tasks.by_idempotency_key(email, key)
    if task is not None and task.request_fingerprint != print_:
        raise Invalid("this Idempotency-Key was used with a different body")
    return task


async def decide(
    services: Services,
    principal: Principal,
    view: TaskView,
    body: DecisionIn,
    *,
    idempotency_key: str | None = None,
) -> None:
    """Answer the open gate; the workflow's validator has the last word. With a key, Temporal
    itself knows a retry (the update's id), even one sent after a lost answer or a timeout."""
    body = tool_edits.checked(services.settings, view, body)
    refused_for_claim = _claim_refusal(view, body.gate_id, principal.email)
    if refused_for_claim is not None:
        services.metrics.decisions.labels(body.action.value, refused_for_claim.kind.value).inc()
        raise refused_for_claim
    decision = Decision(
        gate_id=body.gate_id,
        action=body.action,
        actor=principal.email,
        role=principal.role_in(view.task.team),
        changes=body.changes,
        reason=body.reason,
        on_reject=body.on_reject,
        via_token=principal.token_name,
        message_id=uuid4().hex,
        answer=body.answer,
    )
    update_id = (
        f"decision-{fingerprint(principal.email + chr(0) + idempotency_key)[:32]}"
        if idempotency_key
        else None
    )
    try:
        recorded = await services.gateway.decide(view.task.id, decision, update_id)
        if not recorded:
            await _until_recorded(services, view.task, decision)
    except NotOpen as refused:
        services.metrics.decisions.labels(body.action.value, refused.kind.value).inc()
        raise await _not_open_answer(services, view.task.id, decision, refused) from None
    except Refused as refused:
        services.metrics.decisions.labels(body.action.value, refused.kind.value).inc()
        raise
    services.metrics.decisions.labels(body.action.value, "ok").inc()
    if view.task.gate_opened_at is not None and view.task.gate_kind is not None:
        waited = (utcnow() - view.task.gate_opened_at).total_seconds()
        services.metrics.gate_wait.labels(view.task.gate_kind).observe(max(waited, 0.0))


async def _until_recorded(services: Services, seen: Task, decision: Decision) -> None:
    """An approval that the model step records as it starts: the answer waits until the read
    model shows it (the gate closed), so the caller reads its own write. The workflow holds the
    decision either way; a task that stopped before it was written refuses it (NotOpen)."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + _RECORD_WAIT_SECONDS
    task: Task | None = seen  # as read before the decision was sent
    while task is not None and task.gate_id == decision.gate_id:
        left = ends - loop.time()
        if left <= 0 or not await services.watch.changed(seen.id, task.updated_at, left):
            return  # not shown yet: the workflow records it (it has it), the caller may look later
        task = await services.tasks.row(seen.id)
    stopped = task is not None and not TaskStatus(task.status).active
    if stopped and await _decided_earlier(services, seen.id, decision) is None:
        raise NotOpen("the decision could not be recorded; the task has stopped")


def check_may_decide(principal: Principal, view: TaskView) -> None:
    """Refuse early what the workflow would refuse of this person (role, four-eyes) or what a
    claim forbids, for callers that spend something on trying (a decision link)."""
    task = view.task
    role = principal.role_in(task.team)
    if task.gate_kind == GateKind.QUESTION:
        reason = may_answer(role)
    else:
        reason = may_decide(actor=principal.email, role=role, excluded=task.gate_excluded)
    if reason is not None:
        raise (FourEyes if can_approve(role) else Forbidden)(reason)
    refused = _claim_refusal(view, task.gate_id or "", principal.email)
    if refused is not None:
        raise refused


def _claim_refusal(view: TaskView, gate_id: str, actor: str) -> Refused | None:
    """A decision on a gate someone else holds is refused (the read model says who holds it; a
    claim taken in the moment between this check and the workflow's answer does not stop it)."""
    task = view.task
    if task.gate_id != gate_id:
        return None  # the workflow refuses a gate that is not open, with its own reason
    current = claims.holder(task.gate_claimed_by, task.gate_claim_expires_at, utcnow())
    return claims.decide_refusal(current=current, actor=actor)


async def claim(
    services: Services,
    principal: Principal,
    view: TaskView,
    gate_id: str,
    *,
    assignee: str | None = None,
    take_over: bool = False,
) -> None:
    """Claim an open gate for the caller, or assign it to another approver of the task's team."""
    team = view.task.team
    if not can_approve(principal.role_in(team)):
        raise Forbidden("only an approver of the task's team can claim its gates")
    if assignee is not None and assignee != principal.email:
        other = await services.directory.principal_for_email(assignee)
        if other is None or not can_approve(other.role_in(team)):
            raise Invalid(f"{assignee} is not an approver of team {team}")
        assignee = other.email
    await services.claims.claim(
        view.task.id,
        gate_id,
        caller=principal.email,
        assignee=assignee,
        take_over=take_over,
        via=principal.token_name,
    )


async def release(services: Services, principal: Principal, view: TaskView, gate_id: str) -> None:
    """Let go of the caller's claim on a gate."""
    if not can_approve(principal.role_in(view.task.team)):
        raise Forbidden("only an approver of the task's team can release its gates")
    await services.claims.release(view.task.id, gate_id, caller=principal.email, via=principal.token_name)


class DecidedEarlier(NotOpen):
    """The gate is closed because this very person already decided it this way: a retry
    whose first attempt landed although its answer was lost. Still 409 (the contract: a
    second decision on a gate changes nothing and is refused), with `your_decision` saying
    the first one stands."""

    def __init__(self, message: str, your_decision: dict[str, Any]) -> None:
        super().__init__(message)
        self.problem_extra = {"your_decision": your_decision}


async def _not_open_answer(
    services: Services, task_id: str, decision: Decision, refused: NotOpen
) -> Exception:
    """What a decision on a gate the workflow does not have open gets: a 409, saying so when the
    caller itself decided it earlier; or a 503 while the workflow catches up (`_shown_open`)."""
    earlier = await _decided_earlier(services, task_id, decision)
    if earlier is not None:
        return earlier
    if type(refused) is NotOpen and await _shown_open(services, task_id, decision.gate_id):
        return Unavailable("the task's workflow (catching up after a restart)", CATCHING_UP_SECONDS)
    return refused


async def _shown_open(services: Services, task_id: str, gate_id: str) -> bool:
    """Whether the read model still shows the gate open although the workflow says it is not.

    The workflow records a gate's opening (a local activity) before Temporal has its workflow
    task; when the worker or Temporal stops in between, a new worker replays that task, and
    until it has, the workflow refuses the gate the read model shows open. The same decision
    a moment later finds it open, so the answer is 503, not a 409 that would tell a client
    the gate is gone (soaked in benchmarks/soak.py). The read model also lags a decision that
    just won (until its record lands): a loser then gets the 409 on its retry.
    """
    with contextlib.suppress(*DatabaseDown):  # the refusal is the answer; this only corrects it
        row = await services.tasks.row(task_id)
        return row is not None and row.gate_id == gate_id
    return False


async def _decided_earlier(services: Services, task_id: str, decision: Decision) -> DecidedEarlier | None:
    """The caller's own recorded decision of this gate with the same action, if there is one."""
    events: list[AuditEvent] = []
    with contextlib.suppress(*DatabaseDown):  # the refusal is the answer; this only adds to it
        events = await services.audit.events(task_id)
    for event in reversed(events):
        data = event.data
        same = (
            event.action == EventAction.GATE_DECIDED
            and data.get("gate_id") == decision.gate_id
            and event.actor == f"user:{decision.actor}"
            and data.get("action") == decision.action.value
        )
        if same:
            return DecidedEarlier(
                f"gate {decision.gate_id} is not open: you already decided it ({decision.action.value}) "
                f"at {event.at}; that decision stands",
                {"action": decision.action.value, "at": event.at, "seq": event.seq},
            )
    return None


async def set_autonomy(
    services: Services, principal: Principal, view: TaskView, level: AutonomyLevel
) -> None:
    """Move the slider; the workflow checks it against the team's cap as it is now (read here,
    so a lowered cap wins over the one at submission), and who moves it."""
    team = await services.directory.team(view.task.team)
    change = AutonomyChange(
        autonomy=level,
        actor=principal.email,
        role=principal.role_in(view.task.team),
        via_token=principal.token_name,
        message_id=uuid4().hex,
        cap=AutonomyLevel(team.max_autonomy) if team else None,
    )
    await services.gateway.set_autonomy(view.task.id, change)


async def cancel(services: Services, principal: Principal, view: TaskView) -> None:
    task = view.task
    if not may_cancel(actor=principal.email, role=principal.role_in(task.team), submitter=task.submitted_by):
        raise Forbidden("only the submitter or an approver can cancel a task")
    if not TaskStatus(task.status).active:
        raise Finished(f"the task has already ended ({task.status})")
    request = CancelRequest(principal.email, principal.token_name, message_id=uuid4().hex)
    await services.gateway.cancel(task.id, request)


async def resume(services: Services, principal: Principal, view: TaskView) -> None:
    """Run a failed task again from its failed step (or its plan); the audit records who."""
    task = view.task
    if not may_resume(principal.role_in(task.team)):
        raise Forbidden("only an approver of the task's team can resume it")
    if task.status != TaskStatus.FAILED:
        raise NotOpen(f"only a failed task can be resumed; this one is {task.status}")
    team = await services.directory.team(task.team)
    cap = (
        AutonomyLevel(team.max_autonomy) if team else None
    )  # the team's cap now: the resumed run keeps under it
    await services.gateway.resume(task.id, principal.email, principal.token_name, cap)


async def verify_audit(services: Services, view: TaskView) -> ChainCheck:
    """The task's chain held against the head its workflow recorded (or its signed anchor).

    A running task's newest event may be committed a moment before its workflow learns the
    new head: the check is repeated briefly while the chain is exactly that far ahead.
    """
    for _ in range(_HEAD_CATCH_UP_TRIES):
        live = await services.gateway.audit_head(view.task.id)
        check = await services.audit.verify(view.task.id, live)
        caught_up = live is None or check.ok or check.events != live.seq + 1
        if caught_up or not TaskStatus(view.task.status).active:
            return check
        await asyncio.sleep(0.2)
    return check
