"""Sign-in and sign-out."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from exosuit.domain.refusals import Throttled
from web.deps import ServicesDep
from web.pages.common import CheckedForm, redirect, render
from web.pages.oidc import ID_TOKEN_COOKIE, provider_logout_url
from web.security import clear_session_cookie, session_cookie, set_session_cookie

router = APIRouter()
LOGIN_CSRF_COOKIE = "exosuit_login_csrf"  # double-submit: there is no session yet


def _safe_next(target: str | None) -> str:
    # Only local paths, so the login form cannot be used to redirect elsewhere.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def login_page(request: Request, next_path: str, error: str | None = None, status: int = 200) -> Response:
    settings = request.app.state.services.settings
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context = {
        "next": next_path,
        "error": error,
        "login_csrf": token,
        "oidc": settings.oidc_enabled,
        "local_passwords": settings.local_passwords or not settings.oidc_enabled,
    }
    response = render(request, "login.html", context, status=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", path="/login")
    return response


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    return login_page(request, _safe_next(next))


@router.post("/login")
async def login(
    request: Request,
    services: ServicesDep,
    email: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    settings = services.settings
    if not settings.local_passwords and settings.oidc_enabled:
        return login_page(request, _safe_next(next), "Sign in with your company account.", 403)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf_token.encode()):
        return login_page(request, _safe_next(next), "The form expired. Please sign in again.", 403)
    address = request.client.host if request.client else "unknown"
    try:
        await services.limits.sign_in_attempt(address, email)
    except Throttled as throttled:
        message = f"{throttled.message}. Try again in {throttled.retry_after} s."
        response = login_page(request, _safe_next(next), message, 429)
        response.headers["Retry-After"] = str(throttled.retry_after)
        return response
    token = await services.directory.sign_in(email, password, replacing=session_cookie(request))
    if token is None:
        await services.limits.sign_in_failed(email)
        return login_page(request, _safe_next(next), "Wrong email or password.", 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, services: ServicesDep, _form: CheckedForm) -> Response:
    token = session_cookie(request)
    if token:
        await services.directory.sign_out(token)
    provider_logout = await provider_logout_url(request, services.settings)
    response = redirect(request, provider_logout or "/login")
    clear_session_cookie(response)
    response.delete_cookie(ID_TOKEN_COOKIE, path="/")
    return response
