"""An approver's edit of tool arguments (or of a plan naming tools), checked before it reaches
the workflow: against the tool's input schema and tools.toml's policy, so a bad edit gets a
422 with a readable reason and nothing changes. The worker checks again before it sends."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exosuit.domain.autonomy import DecisionAction, GateKind
from exosuit.domain.plan import PlanInvalid, validate_steps
from exosuit.domain.refusals import Invalid
from exosuit.domain.tools import (
    MCP_PREFIX,
    ArgsInvalid,
    Catalogue,
    ToolSpec,
    args_hash,
    args_text,
    resolve_args,
)
from exosuit.settings import Settings
from exosuit.storage.tables import Step
from exosuit.storage.tasks import TaskView
from exosuit.tooling import (
    ToolsConfig,
    ToolsFileInvalid,
    UrlAmbiguous,
    allowed_prefix,
    load_tools_config,
    normalised_url,
)
from web.schemas import DecisionIn

_cache: dict[Path, tuple[float, ToolsConfig]] = {}


def tools_config(settings: Settings) -> ToolsConfig:
    """tools.toml as it is now (read again when the file changes)."""
    path = settings.resolved_tools_file
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return ToolsConfig()
    cached = _cache.get(path)
    if cached is None or cached[0] != mtime:
        try:
            cached = (mtime, load_tools_config(path))
        except ToolsFileInvalid as exc:
            raise Invalid(f"tools.toml cannot be read: {exc}") from None
        _cache[path] = cached
    return cached[1]


def step_spec(config: ToolsConfig, step: Step) -> ToolSpec | None:
    """The step's tool as the gate shows and checks it (an MCP tool as it was discovered)."""
    if step.tool is None:
        return None
    if step.tool.startswith(MCP_PREFIX):
        info = step.tool_info or {}
        return ToolSpec(
            step.tool,
            str(info.get("description") or "an MCP tool"),
            side_effects=True,
            input_schema=info.get("input_schema") or {"type": "object"},
        )
    return config.builtin_specs().get(step.tool)


def _catalogue(config: ToolsConfig, view: TaskView, names: list[str]) -> Catalogue:
    known = [spec for s in view.steps if (spec := step_spec(config, s)) is not None]
    specs = {s.name: s for s in known if s.name.startswith(MCP_PREFIX)}
    for name in names:  # a plan edit may name another tool of a configured server
        server = name.removeprefix(MCP_PREFIX).partition(".")[0]
        if name.startswith(MCP_PREFIX) and name not in specs and config.server(server):
            specs[name] = ToolSpec(name, "an MCP tool", side_effects=True, input_schema={"type": "object"})
    return config.catalogue(list(specs.values()))


def checked(settings: Settings, view: TaskView, body: DecisionIn) -> DecisionIn:
    """The decision, its tool arguments checked (and a plan's risks raised to policy's floors)."""
    if body.action is not DecisionAction.EDIT or body.gate_id != view.task.gate_id:
        return body  # a stale gate is the workflow's to refuse (409)
    config = tools_config(settings)
    task = view.task
    if task.gate_kind == GateKind.STEP and "args" in body.changes:
        step = next((s for s in view.steps if s.id == task.gate_step_id), None)
        spec = step_spec(config, step) if step is not None else None
        if spec is None or not spec.takes_args:
            raise Invalid("this step's tool takes no args")
        try:
            config.catalogue([spec]).check_args(spec, body.changes["args"])
        except ArgsInvalid as exc:
            raise Invalid(str(exc)) from None
        return body
    if task.gate_kind == GateKind.PLAN and isinstance(body.changes.get("steps"), list):
        raw: list[Any] = body.changes["steps"]
        names = [str(s.get("tool")) for s in raw if isinstance(s, dict) and s.get("tool")]
        try:
            steps = validate_steps(body.changes, catalogue=_catalogue(config, view, names))
        except PlanInvalid as exc:
            raise Invalid(str(exc)) from None
        changes = {"steps": [s.model_dump(mode="json") for s in steps]}
        return body.model_copy(update={"changes": changes})
    return body


# --- the gate's form: one field per argument, read back into args --------------------------

LONG_TEXT = frozenset({"body", "text", "content", "message", "description", "notes"})


@dataclass
class ArgField:
    name: str
    widget: str  # select | input | textarea | number | checkbox | list | headers | json
    value: str
    required: bool = False
    options: list[str] = field(default_factory=list)
    hint: str = ""


def _widget(name: str, schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if name == "headers" and kind == "object":
        return "headers"
    if "enum" in schema:
        return "select"
    if kind == "string":
        return "textarea" if name in LONG_TEXT or schema.get("maxLength", 0) > 1000 else "input"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    if kind == "array" and (schema.get("items") or {}).get("type") == "string":
        return "list"
    if isinstance(kind, list) and "string" in kind:
        return "textarea" if name in LONG_TEXT else "input"
    return "json"


def _shown(widget: str, value: Any) -> str:
    if value is None:
        return ""
    if widget == "headers":
        return "\n".join(f"{k}: {v}" for k, v in dict(value).items())
    if widget == "list":
        return ", ".join(str(v) for v in value)
    if widget == "checkbox":
        return "on" if value else ""
    if widget in ("json",) or not isinstance(value, str):
        return json.dumps(value, indent=2, ensure_ascii=False) if widget == "json" else str(value)
    return value


def arg_fields(spec: ToolSpec, args: dict[str, Any]) -> list[ArgField]:
    """The form for a tool's arguments, one field per property of its input schema."""
    schema = spec.input_schema or {}
    required = set(schema.get("required", []))
    fields = []
    for name, prop in (schema.get("properties") or {}).items():
        prop = prop if isinstance(prop, dict) else {}
        widget = _widget(name, prop)
        hints = {"headers": "one per line, Name: value", "list": "comma-separated", "json": "JSON"}
        fields.append(
            ArgField(
                name,
                widget,
                _shown(widget, args.get(name)),
                name in required,
                [str(o) for o in prop.get("enum", [])],
                str(prop.get("description") or hints.get(widget, "")),
            )
        )
    return fields


def args_from_form(spec: ToolSpec, form: dict[str, str]) -> dict[str, Any]:
    """The arguments a posted gate form describes (`arg.NAME` fields); ValueError if unreadable."""
    args: dict[str, Any] = {}
    for f in arg_fields(spec, {}):
        raw = form.get(f"arg.{f.name}")
        if f.widget == "checkbox":
            args[f.name] = raw is not None
        elif raw is not None and (raw.strip() != "" or f.required):
            args[f.name] = _read_field(f.name, f.widget, raw)
    return args


def _read_field(name: str, widget: str, raw: str) -> Any:
    """One posted field's value, read as its widget writes it."""
    if widget == "headers":
        return _headers(name, raw)
    if widget == "list":
        return [v.strip() for v in raw.split(",") if v.strip()]
    if widget == "number":
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"{name}: {raw!r} is not a number") from None
    if widget == "json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: not valid JSON ({exc})") from None
    return raw.replace("\r\n", "\n")


def _headers(name: str, raw: str) -> dict[str, str]:
    """`Name: value` lines, one header a line."""
    headers = {}
    for line in raw.splitlines():
        if line.strip():
            key, sep, value = line.partition(":")
            if not sep or not key.strip():
                raise ValueError(f"{name}: write each header as Name: value")
            headers[key.strip()] = value.strip()
    return headers


@dataclass
class ToolView:
    """What a tool step will do, exactly, as its gate shows it."""

    name: str
    description: str
    kind: str  # http | email | mcp
    fields: list[ArgField]
    exact: list[tuple[str, str]]  # (what, value) with earlier results filled in, secrets masked
    args_sha256: str


def tool_view(settings: Settings, view: TaskView, step: Step) -> ToolView | None:
    config = tools_config(settings)
    spec = step_spec(config, step)
    if spec is None or not spec.takes_args or step.args is None:
        return None
    earlier = [s.output for s in view.steps if s.index < step.index and s.output and s.kind == "llm"]
    args = resolve_args(step.args, earlier[-1] if earlier else "")
    exact: list[tuple[str, str]] = []
    if spec.name == "http_request":
        kind = "http"
        url = str(args.get("url", ""))
        # Where it goes: the URL as normalised for the allow-list and for sending (an
        # ambiguous one is shown as written; the policy refuses it before anything is sent).
        with contextlib.suppress(UrlAmbiguous):
            url = normalised_url(url)
        exact.append(("Request", f"{args.get('method', '')} {url}"))
        headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
        for secret in config.http.secret_headers if config.http else []:
            if allowed_prefix([secret.prefix], url) is not None:
                headers[secret.name] = f"•••••• (secret from env {secret.env})"
        headers["Idempotency-Key"] = "TASK:STEP:SEQ of this approval"
        exact.append(("Headers", "\n".join(f"{k}: {v}" for k, v in headers.items())))
        exact.append(("Body", str(args.get("body") or "(none)")))
    elif spec.name == "send_email":
        kind = "email"
        sender = config.email.sender if config.email else "?"
        exact += [("From", sender), ("To", ", ".join(str(a) for a in args.get("to", [])))]
        exact += [("Subject", str(args.get("subject", ""))), ("Body", str(args.get("body", "")))]
    else:
        kind = "mcp"
        server, _, tool = spec.name.removeprefix(MCP_PREFIX).partition(".")
        exact += [("Server", server), ("Tool", tool), ("Arguments", args_text(args))]
    return ToolView(
        spec.name, spec.description, kind, arg_fields(spec, step.args), exact, args_hash(step.args)
    )
