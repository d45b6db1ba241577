"""Sign-in from the company's identity provider: OpenID Connect, authorization code with PKCE.

`/auth/oidc/login` sends the browser to the provider with a fresh state, nonce and PKCE
verifier (kept in a short-lived cookie signed with the root secret); `/auth/oidc/callback`
exchanges the code (Authlib), checks the ID token's signature, issuer, audience, expiry and
nonce (joserfc), and opens an ordinary session for the person the provider vouched for,
matched or created by email, with the team and role its claims name. A session opened this
way ends like any other (`exosuit user disable` cuts it at once); sign-out also ends the
session at the provider where it offers an end_session_endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from exosuit.domain.autonomy import Role
from exosuit.settings import Settings
from web.deps import ServicesDep
from web.errors import Problem
from web.security import session_cookie, set_session_cookie

if TYPE_CHECKING:
    from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

# authlib (with a second httpx) and joserfc are imported at the first sign-in, not by every
# web process: about 5 MB and 200 modules that a deployment without OIDC never uses.

router = APIRouter()
PENDING_COOKIE = "exosuit_oidc_pending"
ID_TOKEN_COOKIE = "exosuit_oidc_id"  # the hint for the provider's logout
PENDING_SECONDS = 600
TIMEOUT_SECONDS = 10.0
TIMEOUT = httpx.Timeout(TIMEOUT_SECONDS)


@dataclass(frozen=True)
class Provider:
    """What the provider's discovery document says (fetched once per issuer and process)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None


_providers: dict[str, Provider] = {}


async def provider(settings: Settings) -> Provider:
    issuer = (settings.oidc_issuer or "").rstrip("/")
    if issuer not in _providers:
        async with httpx.AsyncClient(timeout=TIMEOUT, trust_env=False) as http:
            response = await http.get(f"{issuer}/.well-known/openid-configuration")
            response.raise_for_status()
            meta = response.json()
        if str(meta.get("issuer", "")).rstrip("/") != issuer:
            raise ValueError(f"the provider names itself {meta.get('issuer')!r}, not {issuer!r}")
        _providers[issuer] = Provider(
            issuer=str(meta["issuer"]),
            authorization_endpoint=meta["authorization_endpoint"],
            token_endpoint=meta["token_endpoint"],
            jwks_uri=meta["jwks_uri"],
            userinfo_endpoint=meta.get("userinfo_endpoint"),
            end_session_endpoint=meta.get("end_session_endpoint"),
        )
    return _providers[issuer]


def form_targets(settings: Settings) -> list[str]:
    """The provider's origin, where sign-out's form redirect may go (CSP form-action)."""
    if not settings.oidc_enabled:
        return []
    parts = urlsplit(settings.oidc_issuer or "")
    return [f"{parts.scheme}://{parts.netloc}"]


def public_url(request: Request, settings: Settings) -> str:
    """EXOSUIT_PUBLIC_URL; unset (one machine, tests), the address this request came to: the
    provider checks a redirect URI against the client's registered ones either way."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _client(request: Request, settings: Settings) -> AsyncOAuth2Client:
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        scope=settings.oidc_scopes,
        redirect_uri=f"{public_url(request, settings)}/auth/oidc/callback",
        code_challenge_method="S256",
        timeout=TIMEOUT_SECONDS,
        trust_env=False,
    )


# --- the pending sign-in, in a signed cookie ------------------------------------------------


def _mac(settings: Settings, data: bytes) -> str:
    key = hashlib.sha256(b"exosuit-oidc-pending:" + settings.resolved_secret_key.encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode().rstrip("=")


def _seal(settings: Settings, pending: dict[str, Any]) -> str:
    data = base64.urlsafe_b64encode(json.dumps(pending).encode()).decode()
    return f"{data}.{_mac(settings, data.encode())}"


def _open(settings: Settings, cookie: str | None) -> dict[str, Any] | None:
    data, _, mac = (cookie or "").partition(".")
    if not data or not hmac.compare_digest(mac, _mac(settings, data.encode())):
        return None
    pending: dict[str, Any] = json.loads(base64.urlsafe_b64decode(data.encode()))
    return pending if pending.get("until", 0) > time.time() else None


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


# --- claims to memberships ------------------------------------------------------------------


def memberships(settings: Settings, claims: dict[str, Any]) -> dict[str, Role]:
    """The teams (a string or a list in the team claim) with the role the role claim names
    (member if absent or unknown)."""
    teams = claims.get(settings.oidc_team_claim) or []
    names = [teams] if isinstance(teams, str) else [str(t) for t in teams if isinstance(t, str)]
    try:
        role = Role(str(claims.get(settings.oidc_role_claim, Role.MEMBER.value)).lower())
    except ValueError:
        role = Role.MEMBER
    return {name: role for name in names if name}


def _refused(request: Request, message: str, status: int) -> Response:
    from web.pages.auth import login_page  # the sign-in page shows why

    return login_page(request, "/", message, status)


# --- routes ---------------------------------------------------------------------------------


@router.get("/auth/oidc/login")
async def oidc_login(request: Request, services: ServicesDep, next: str | None = None) -> Response:
    settings = services.settings
    if not settings.oidc_enabled:
        raise Problem(404, "Not Found", "OpenID Connect sign-in is not configured")
    try:
        found = await provider(settings)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return _refused(request, f"The identity provider cannot be reached now ({exc}).", 502)
    state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
    verifier += secrets.token_urlsafe(24)  # 43-128 characters (RFC 7636)
    async with _client(request, settings) as client:
        url, _ = client.create_authorization_url(
            found.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
        )
    pending: dict[str, Any] = {"state": state, "nonce": nonce, "verifier": verifier, "next": _safe_next(next)}
    pending["until"] = time.time() + PENDING_SECONDS
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        PENDING_COOKIE,
        _seal(settings, pending),
        max_age=PENDING_SECONDS,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",  # the provider's redirect back is a top-level navigation
        path="/auth/oidc",
    )
    return response


@router.get("/auth/oidc/callback")
async def oidc_callback(request: Request, services: ServicesDep) -> Response:
    from joserfc.errors import JoseError

    settings = services.settings
    if not settings.oidc_enabled:
        raise Problem(404, "Not Found", "OpenID Connect sign-in is not configured")
    pending = _open(settings, request.cookies.get(PENDING_COOKIE))
    params = request.query_params
    if pending is None or not hmac.compare_digest(params.get("state", ""), pending["state"]):
        return _refused(request, "The sign-in expired or did not start here. Please try again.", 400)
    if "error" in params or "code" not in params:
        return _refused(request, f"The identity provider said: {params.get('error', 'no code')}.", 401)
    try:
        found = await provider(settings)
        async with _client(request, settings) as client:
            token = await client.fetch_token(
                found.token_endpoint, code=params["code"], code_verifier=pending["verifier"]
            )
            claims = await _verified_claims(settings, found, client, str(token.get("id_token", "")))
            if claims.get("nonce") != pending["nonce"]:
                raise ValueError("the ID token's nonce is not this sign-in's")
            if found.userinfo_endpoint:  # custom claims often come only from userinfo
                info = (await client.get(found.userinfo_endpoint)).json()
                if info.get("sub") == claims["sub"]:
                    claims = info | claims
    except (httpx.HTTPError, JoseError, ValueError, KeyError) as exc:
        return _refused(request, f"The identity provider's answer was not accepted ({exc}).", 401)
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        return _refused(request, "The identity provider gave no verified email address.", 403)
    session = await services.directory.sign_in_vouched(
        email, memberships(settings, claims), replacing=session_cookie(request)
    )
    if session is None:
        return _refused(request, "This account is disabled here.", 403)
    response = RedirectResponse(pending["next"], status_code=303)
    set_session_cookie(request, response, session)
    response.delete_cookie(PENDING_COOKIE, path="/auth/oidc")
    response.set_cookie(
        ID_TOKEN_COOKIE,
        str(token["id_token"]),
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
        path="/",
    )
    return response


async def _verified_claims(
    settings: Settings, found: Provider, client: AsyncOAuth2Client, id_token: str
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience and expiry hold."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    keys = KeySet.import_key_set((await client.get(found.jwks_uri)).json())
    decoded = jwt.decode(id_token, keys)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": found.issuer},
        aud={"essential": True, "value": settings.oidc_client_id or ""},
        sub={"essential": True},
        exp={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


async def provider_logout_url(request: Request, settings: Settings) -> str | None:
    """Where sign-out continues to end the provider's session, if this one came from there."""
    id_token = request.cookies.get(ID_TOKEN_COOKIE)
    if not settings.oidc_enabled or not id_token:
        return None
    try:
        found = await provider(settings)
    except (httpx.HTTPError, ValueError):
        return None
    if not found.end_session_endpoint:
        return None
    query = {
        "id_token_hint": id_token,
        "client_id": settings.oidc_client_id or "",
        "post_logout_redirect_uri": f"{public_url(request, settings)}/login",
    }
    return f"{found.end_session_endpoint}?{urlencode(query)}"
