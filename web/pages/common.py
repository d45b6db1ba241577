"""What every page shares: templates, the signed-in visitor, CSRF-checked forms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from exosuit.storage.db import utcnow
from exosuit.storage.identity import Principal
from web.charts import duration
from web.deps import ServicesDep
from web.security import CSRF_FIELD, csrf_ok, session_cookie

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
templates = Environment(
    loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), enable_async=False
)


def waited(since: datetime | None) -> str:
    """A short human duration since a moment: '3 min', '2 h 5 min'."""
    if since is None:
        return ""
    seconds = int((utcnow() - since).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


templates.filters["waited"] = waited
templates.filters["when"] = when
templates.filters["duration"] = duration


@dataclass(frozen=True)
class Visitor:
    """A signed-in person and their session's CSRF token."""

    principal: Principal
    csrf: str


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class CsrfRefused(Exception):
    pass


async def current_visitor(request: Request, services: ServicesDep) -> Visitor:
    token = session_cookie(request)
    found = await services.directory.session_for(token) if token else None
    if found is None:
        raise LoginRequired(request.url.path)
    return Visitor(*found)


CurrentVisitor = Annotated[Visitor, Depends(current_visitor)]


async def checked_form(request: Request, visitor: CurrentVisitor) -> dict[str, str]:
    """The posted form, once its CSRF token (field or htmx header) matches the session's."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not csrf_ok(visitor.csrf, request, values.get(CSRF_FIELD)):
        raise CsrfRefused
    return values


CheckedForm = Annotated[dict[str, str], Depends(checked_form)]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    block: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    """The whole page, or for an htmx request just the named block (template fragments)."""
    template = templates.get_template(name)
    context = {"request": request, **context}
    if block is not None and is_htmx(request):
        html = "".join(template.blocks[block](template.new_context(context)))
    else:
        html = template.render(context)
    response = HTMLResponse(html, status_code=status)
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(request: Request, url: str) -> Response:
    """After a successful plain POST: 303 to the next page (htmx follows HX-Redirect)."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def install_page_handlers(app: FastAPI) -> None:
    async def on_login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        url = f"/login?next={quote(exc.next_path)}"
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return HTMLResponse(
            '<p class="flash error" role="alert">This form has expired or did not come from '
            "Exosuit (CSRF check failed). Reload the page and try again.</p>",
            status_code=403,
        )

    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(CsrfRefused, on_csrf)
