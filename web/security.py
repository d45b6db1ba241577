"""Browser-facing security: session cookies, CSRF, and response headers."""

from __future__ import annotations

import hmac

from fastapi import Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exosuit.storage.identity import SESSION_LIFETIME

SECURE_COOKIE = "__Host-exosuit_session"
DEV_COOKIE = "exosuit_session"  # plain HTTP on localhost cannot carry a Secure cookie
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(DEV_COOKIE)


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(
        SECURE_COOKIE if secure else DEV_COOKIE,
        token,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SECURE_COOKIE, path="/", secure=True, httponly=True)
    response.delete_cookie(DEV_COOKIE, path="/", httponly=True)


def csrf_ok(expected: str, request: Request, form_value: str | None) -> bool:
    """The token from the htmx header or the form field matches the session's."""
    given = request.headers.get(CSRF_HEADER) or form_value or ""
    return hmac.compare_digest(given.encode(), expected.encode())


class SecurityHeaders:
    """CSP allowing only the app's own scripts, nosniff, no framing, no referrer leaks."""

    HEADERS = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin"),
    ]

    def __init__(self, app: ASGIApp, *, form_targets: list[str] | None = None) -> None:
        self.app = app
        if form_targets:  # sign-out continues to the identity provider, a form's redirect
            policy = CONTENT_SECURITY_POLICY.replace(
                "form-action 'self'", "form-action 'self' " + " ".join(form_targets)
            )
            self.HEADERS = [(b"content-security-policy", policy.encode()), *self.HEADERS[1:]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)
