"""`tools.toml`: what tool steps may reach, and the policy on their arguments.

Read by the worker (which runs the tools), the planner (which offers them) and the web
(which checks an approver's edit before it reaches the workflow). Secrets are named here
by environment variable, never written: the worker reads them when it calls.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exosuit.domain.autonomy import Risk
from exosuit.domain.tools import ACTING_TOOLS, TOOLS, Catalogue, ToolSpec, header_refusal


class SecretHeader(BaseModel):
    """A header the worker adds to requests under `prefix`, its value from an env variable."""

    model_config = ConfigDict(extra="forbid")

    prefix: str
    name: str
    env: str
    format: str = "{}"  # e.g. "Bearer {}"


class HttpConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="URL prefixes; anything else is refused.")
    allow_private_network: bool = Field(
        False,
        description="Reach private, loopback and link-local addresses through any allowed prefix; "
        "without it only a prefix that names such an address literally may.",
    )
    timeout_seconds: float = 10.0
    max_response_bytes: int = 1_000_000
    max_redirects: int = 5
    secret_headers: list[SecretHeader] = Field(default_factory=list)


class EmailConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    smtp_host: str
    smtp_port: int = 25
    sender: str
    allow_domains: list[str] = Field(default_factory=list)
    username: str | None = None
    password_env: str | None = None  # the SMTP password's environment variable
    starttls: bool = False
    use_tls: bool = False
    timeout_seconds: float = 10.0


class McpServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    command: list[str] | None = None  # stdio
    url: str | None = None  # Streamable HTTP
    env: dict[str, str] = Field(default_factory=dict)  # the server's variable: the worker's variable
    headers_env: dict[str, str] = Field(default_factory=dict)  # header: env variable (e.g. a token)
    timeout_seconds: float = 30.0

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r} needs either command or url")
        return self


class ToolsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    http: HttpConfig | None = None
    email: EmailConfig | None = None
    mcp: list[McpServerConfig] = Field(default_factory=list)
    floors: dict[str, Risk] = Field(default_factory=dict)

    def builtin_specs(self) -> dict[str, ToolSpec]:
        """The built-in tools this configuration offers (the acting ones only when configured)."""
        specs = dict(TOOLS)
        if self.http is not None:
            specs["http_request"] = ACTING_TOOLS["http_request"]
        if self.email is not None:
            specs["send_email"] = ACTING_TOOLS["send_email"]
        return specs

    def catalogue(self, mcp_specs: list[ToolSpec] | None = None) -> Catalogue:
        """The catalogue: built-ins, the MCP tools discovered, the floors and the policy."""
        specs = self.builtin_specs() | {s.name: s for s in mcp_specs or []}
        return Catalogue(specs=specs, floors=self.floors, policy=self.refusal)

    def server(self, name: str) -> McpServerConfig | None:
        return next((s for s in self.mcp if s.name == name), None)

    def refusal(self, spec: ToolSpec, args: dict[str, Any]) -> str | None:
        """Why the policy refuses these arguments (beyond the schema), or None."""
        if spec.name == "http_request":
            return self.url_refusal(str(args.get("url", ""))) or self.headers_refusal(args.get("headers"))
        if spec.name == "send_email":
            return self.recipients_refusal([str(a) for a in args.get("to", [])])
        return None

    def url_refusal(self, url: str) -> str | None:
        if self.http is None:
            return "http_request is not configured in tools.toml"
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{url!r} is not an http(s) URL"
        if parts.username or parts.password:
            return "a URL must not carry credentials"
        try:
            normal = normalised_url(url)
        except UrlAmbiguous as exc:
            return str(exc)
        if allowed_prefix(self.http.allow, normal) is None:
            return f"{normal} is not on the allow-list ({', '.join(self.http.allow) or 'empty'})"
        return None

    def headers_refusal(self, headers: Any) -> str | None:
        """Drafted headers may not frame, route or stand in for a configured secret."""
        secrets = [s.name for s in self.http.secret_headers] if self.http else []
        return header_refusal({str(k): str(v) for k, v in (headers or {}).items()}, secrets)

    def recipients_refusal(self, recipients: list[str]) -> str | None:
        if self.email is None:
            return "send_email is not configured in tools.toml"
        allowed = {d.lower() for d in self.email.allow_domains}
        outside = [a for a in recipients if a.rpartition("@")[2].lower() not in allowed]
        if outside:
            return f"{', '.join(outside)} not in the allowed domains ({', '.join(sorted(allowed)) or 'none'})"
        return None

    def private_allowed(self, url: str) -> bool:
        """Whether the URL may reach a private address: by config, or a prefix naming one."""
        assert self.http is not None
        if self.http.allow_private_network:
            return True
        prefix = allowed_prefix(self.http.allow, url)
        host = urlsplit(prefix).hostname if prefix else None
        return host is not None and (host == "localhost" or is_private_literal(host))


class UrlAmbiguous(ValueError):
    """A path that servers may read differently (a hidden slash, `..;`): refused, not guessed."""


_ENCODED_DOT = re.compile(r"%2e", re.IGNORECASE)
_HIDDEN_SEPARATOR = re.compile(r"%2f|%5c|\\", re.IGNORECASE)


def normalised_url(url: str) -> str:
    """The URL as a server that normalises paths reads it: scheme and host lower-cased,
    percent-encoded dots decoded, `.` and `..` segments resolved (RFC 3986, 5.2.4); the
    fragment (never sent) dropped. What the allow-list compares and what is sent."""
    parts = urlsplit(url)
    if _HIDDEN_SEPARATOR.search(parts.path):
        raise UrlAmbiguous("a URL path must not hide a slash (%2F, %5C or a backslash)")
    path = _ENCODED_DOT.sub(".", parts.path)
    if any(seg.split(";")[0] in (".", "..") and ";" in seg for seg in path.split("/")):
        raise UrlAmbiguous("a URL path must not carry parameters on a dot segment (..;)")
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), remove_dot_segments(path), parts.query, "")
    )


def remove_dot_segments(path: str) -> str:
    segments = path.split("/")
    kept: list[str] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment in (".", ".."):
            if segment == ".." and len(kept) > 1:
                kept.pop()
            if last:
                kept.append("")
            continue
        kept.append(segment)
    return "/".join(kept) or "/"


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int]:
    return scheme.lower(), (host or "").lower(), port or (443 if scheme.lower() == "https" else 80)


def allowed_prefix(allow: list[str], url: str) -> str | None:
    """The allow-list entry the URL falls under: same scheme, host and port, and a path inside
    the entry's path by whole segments (`/hooks` holds `/hooks/a`, never `/hooksevil`)."""
    try:
        parts = urlsplit(normalised_url(url))
    except UrlAmbiguous:
        return None
    for prefix in allow:
        try:
            p = urlsplit(normalised_url(prefix))
        except UrlAmbiguous:
            continue
        if _origin(parts.scheme, parts.hostname, parts.port) != _origin(p.scheme, p.hostname, p.port):
            continue
        base = p.path or "/"
        inside = parts.path.startswith(base if base.endswith("/") else base + "/") or parts.path == base
        if p.query:
            inside = parts.path == base and (parts.query == p.query or parts.query.startswith(p.query + "&"))
        if inside:
            return prefix
    return None


def is_private_literal(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        return False


class ToolsFileInvalid(ValueError):
    pass


def load_tools_config(path: Path | None) -> ToolsConfig:
    """The file's configuration; an empty one (local tools only) when there is no file."""
    if path is None or not path.exists():
        return ToolsConfig()
    try:
        return ToolsConfig.model_validate(tomllib.loads(path.read_text()))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ToolsFileInvalid(f"{path}: {exc}") from None
