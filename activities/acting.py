"""The built-in tools that act in the world: one HTTP request, one email.

Both carry the execution's key (the `Idempotency-Key` header, the Message-ID) so the other
side can tell a repeat; both check the policy again right before they send, redirects too.
"""

from __future__ import annotations

import email.policy
from collections.abc import Mapping
from email.headerregistry import HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from typing import Any
from urllib.parse import urljoin

import aiosmtplib
import httpx

from exosuit import outbound
from exosuit.tooling import ToolsConfig, allowed_prefix, normalised_url

READ_CHUNK = 16_384
# The Message-ID `<TASK:STEP:SEQ@exosuit>` (docs/tools.md) has colons, which the standard msg-id
# parser cuts at: the header is written as it is.
_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("message-id", UnstructuredHeader)  # type: ignore[arg-type]
_MESSAGE_POLICY = email.policy.SMTP.clone(header_factory=_HEADERS)


class ToolRefused(Exception):
    """The policy refuses the call; nothing was sent."""


class NothingSent(Exception):
    """The call failed before anything left (no connection): it may be tried again."""


def _secret_headers(config: ToolsConfig, url: str, env: Mapping[str, str]) -> dict[str, str]:
    assert config.http is not None
    prefix = allowed_prefix(config.http.allow, url)
    headers = {}
    for secret in config.http.secret_headers:
        if prefix is not None and allowed_prefix([secret.prefix], url) is not None:
            value = env.get(secret.env)
            if value is None:
                raise ToolRefused(f"the secret for header {secret.name} (env {secret.env}) is not set")
            headers[secret.name] = secret.format.format(value)
    return headers


async def _pinned(config: ToolsConfig, url: str) -> outbound.Pinned:
    """No private-network surprises: the host resolved once, each address checked under the
    shared policy (private ones only where the configuration or a prefix naming the address
    allows), and the request sent to the address checked."""
    private = config.private_allowed(url)
    try:
        return await outbound.pin(url, allow_loopback=private, allow_private=private)
    except outbound.Unresolved as exc:
        raise NothingSent(f"cannot resolve: {exc}") from None
    except outbound.DestinationRefused as exc:
        raise ToolRefused(str(exc)) from None


def secret_values(config: ToolsConfig, env: Mapping[str, str]) -> list[str]:
    """Every configured secret as it may appear in an answer: raw and as its header sends it."""
    values: set[str] = set()
    for secret in config.http.secret_headers if config.http else []:
        if raw := env.get(secret.env):
            values |= {raw, secret.format.format(raw)}
    for server in config.mcp:
        values |= {v for name in server.headers_env.values() if (v := env.get(name))}
    if config.email and config.email.password_env and (password := env.get(config.email.password_env)):
        values.add(password)
    return sorted(values, key=len, reverse=True)


def masked(text: str, config: ToolsConfig, env: Mapping[str, str]) -> str:
    """The text with every configured secret replaced: an endpoint that echoes our headers
    must not put the secret into a step's output (members read it, later prompts see it)."""
    for value in secret_values(config, env):
        text = text.replace(value, "[secret withheld]")
    return text


async def http_request(config: ToolsConfig, args: dict[str, Any], key: str, env: Mapping[str, str]) -> str:
    """Send the request; the status and (capped) body as the step's output."""
    assert config.http is not None
    http = config.http
    method, url = str(args["method"]).upper(), str(args["url"])
    body: str | None = args.get("body")
    given = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
    refusal = config.headers_refusal(given)
    if refusal:
        raise ToolRefused(refusal)
    timeout = httpx.Timeout(http.timeout_seconds)
    sent = False
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for _hop in range(http.max_redirects + 1):
            refusal = config.url_refusal(url)
            if refusal:
                raise ToolRefused(refusal)
            url = normalised_url(url)  # what was checked is what is sent
            pinned = await _pinned(config, url)
            headers = httpx.Headers(given)  # case-blind: ours replace any spelling of theirs
            headers.update(_secret_headers(config, url, env) | {"Idempotency-Key": key} | pinned.headers)
            try:
                request = client.build_request(
                    method, pinned.url, headers=headers, content=body, extensions=pinned.extensions
                )
                response = await client.send(request, stream=True)
                sent = True
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        if response.status_code == 303 or (
                            response.status_code in (301, 302) and method == "POST"
                        ):
                            method, body = "GET", None
                        continue
                    text = await _capped(response, http.max_response_bytes)
                    return masked(
                        f"HTTP {response.status_code} {response.reason_phrase}\n\n{text}", config, env
                    )
                finally:
                    await response.aclose()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if not sent:
                    raise NothingSent(f"cannot connect to {url}: {exc}") from None
                raise
    raise ToolRefused(f"more than {http.max_redirects} redirects")


async def _capped(response: httpx.Response, limit: int) -> str:
    data = bytearray()
    async for chunk in response.aiter_bytes(READ_CHUNK):
        data.extend(chunk[: limit - len(data)])
        if len(data) >= limit:
            return data.decode(errors="replace") + f"\n[cut at {limit} bytes]"
    return data.decode(errors="replace")


def message_id(key: str) -> str:
    return f"<{key}@exosuit>"


async def send_email(config: ToolsConfig, args: dict[str, Any], key: str, env: Mapping[str, str]) -> str:
    """Send the email through the configured SMTP server; the accepted message id as output."""
    assert config.email is not None
    mail = config.email
    recipients = [str(a) for a in args["to"]]
    refusal = config.recipients_refusal(recipients)
    if refusal:
        raise ToolRefused(refusal)
    password = None
    if mail.password_env:
        password = env.get(mail.password_env)
        if password is None:
            raise ToolRefused(f"the SMTP password (env {mail.password_env}) is not set")
    message = EmailMessage(policy=_MESSAGE_POLICY)
    message["From"] = mail.sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = str(args["subject"])
    message["Message-ID"] = message_id(key)
    message.set_content(str(args["body"]))
    try:
        await aiosmtplib.send(
            message,
            hostname=mail.smtp_host,
            port=mail.smtp_port,
            username=mail.username,
            password=password,
            start_tls=mail.starttls,
            use_tls=mail.use_tls,
            timeout=mail.timeout_seconds,
        )
    except aiosmtplib.SMTPConnectError as exc:
        raise NothingSent(f"cannot connect to the SMTP server: {exc}") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        return f"refused by the SMTP server: {exc}"
    return f"accepted: message id {message_id(key)} for {', '.join(recipients)}"
