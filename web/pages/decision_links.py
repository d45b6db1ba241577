"""Deciding from a notification: `/decide/{token}`, a link for one person and one gate.

The token is the person's credential for this one gate (it went to their own address only),
so the page asks no sign-in; it is stored hashed, works once, and expires with the gate (or
after a day). GET only shows what will run and a confirm form; POST decides as that person
through the one decision path, so four-eyes, claims and the workflow's checks hold, and only
if the gate still shows what the page showed (its etag).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from exosuit.domain.autonomy import DecisionAction, GateKind, OnReject
from exosuit.domain.decisions import check_answer
from exosuit.domain.refusals import Refused
from exosuit.storage.identity import Principal
from web import actions
from web.deps import ServicesDep
from web.errors import status_of
from web.pages.common import render
from web.pages.views import gate_view
from web.schemas import DecisionIn, gate_etag

router = APIRouter()
VIA = "decision link"  # what the audit's `token` says of a decision made through one
GONE = "This link no longer works: it was used, it expired, or its gate was decided."


async def _context(services: ServicesDep, token: str) -> tuple[dict[str, object], Principal | None]:
    link = await services.links.live(token)
    view = await services.tasks.task(link.task_id) if link is not None else None
    person = await services.directory.principal_for_email(link.email) if link is not None else None
    if link is None or view is None or person is None:
        return {"gone": GONE}, None
    gate = gate_view(view, person, services.settings)
    plan = [s.plan_entry() for s in view.steps]
    return {
        "task": view.task,
        "steps": view.steps,
        "plan": plan,
        "gate": gate,
        "etag": gate_etag(view),
        "email": person.email,
        "token": token,
    }, person


@router.get("/decide/{token}")
async def confirm_page(request: Request, token: str, services: ServicesDep) -> Response:
    """What the decision would run, and the form to confirm it; never decides."""
    context, _ = await _context(services, token)
    return render(
        request, "decide_link.html", context | {"visitor": None}, status=410 if "gone" in context else 200
    )


@router.post("/decide/{token}")
async def decide_by_link(request: Request, token: str, services: ServicesDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    context, person = await _context(services, token)
    if person is None:
        return render(request, "decide_link.html", context | {"visitor": None}, status=410)
    if form.get("etag") != context["etag"]:
        error = "The gate changed since this page showed it; read it again before you decide."
        return render(request, "decide_link.html", context | {"visitor": None, "error": error}, status=412)
    view = await services.tasks.task(str(form.get("task_id", "")))
    action = form.get("action", "")
    try:
        if view is None or action not in (
            DecisionAction.APPROVE,
            DecisionAction.REJECT,
            DecisionAction.ANSWER,
        ):
            raise ValueError("approve, reject or answer")
        stops = view.task.gate_kind in (GateKind.COST, GateKind.QUESTION)  # nothing to revise
        decision = DecisionIn(
            gate_id=view.task.gate_id or "",
            action=DecisionAction(action),
            reason=(form.get("reason") or "").strip() or None if action == DecisionAction.REJECT else None,
            on_reject=OnReject.STOP if stops else OnReject.REVISE,
            answer=form.get("answer") if action == DecisionAction.ANSWER else None,
        )
        principal = Principal(person.user_id, person.email, person.roles, token_name=VIA)
        actions.check_may_decide(principal, view)  # refused before the link is spent
        if decision.action is DecisionAction.ANSWER:  # an answer outside the choices, too
            check_answer(decision.answer, view.task.gate_choices)
        if not await services.links.spend(token):
            return render(request, "decide_link.html", {"gone": GONE, "visitor": None}, status=410)
        await actions.decide(services, principal, view, decision)
    except Refused as refused:
        return render(
            request,
            "decide_link.html",
            context | {"visitor": None, "error": refused.message},
            status=status_of(refused),
        )
    except ValueError as exc:
        return render(request, "decide_link.html", context | {"visitor": None, "error": str(exc)}, status=422)
    done = {"visitor": None, "done": action, "task": view.task, "answer": decision.answer}
    return render(request, "decide_link.html", done)
