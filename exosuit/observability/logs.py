"""Log lines on stderr: one JSON object a line (or text for a terminal), with context, no secrets.

Every record passes two filters on the one handler: `LogContext` adds the request id (set
by the web app's middleware), the task id (from Temporal's activity or workflow context)
and, when tracing is on, the trace id; `Redactor` rewrites the message and any traceback so
that credentials never reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from exosuit.domain.contracts import workflow_id_for

if TYPE_CHECKING:
    from temporalio.runtime import LoggingConfig

LogFormat = Literal["json", "text"]

request_id: ContextVar[str | None] = ContextVar("exosuit_request_id", default=None)
"""The id of the HTTP request being served, for the log lines it causes."""

_WORKFLOW_PREFIX = workflow_id_for("")
_trace_ids: Callable[[], tuple[str, str] | None] | None = None  # set while tracing is on
REDACTED = "[redacted]"
# A line per model call, a few per start (migrations checked): only their warnings.
CHATTY = ("httpx", "httpcore", "httpx2", "httpcore2", "alembic")
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")  # servers run with log_config=None


def task_id_of(workflow_id: str | None) -> str | None:
    """The task a workflow id belongs to (workflow ids are `task-<id>`)."""
    if not workflow_id or not workflow_id.startswith(_WORKFLOW_PREFIX):
        return None
    return workflow_id[len(_WORKFLOW_PREFIX) :]


def correlate_with(trace_ids: Callable[[], tuple[str, str] | None] | None) -> None:
    """Have log lines carry the current trace and span ids (tracing.py calls this)."""
    global _trace_ids
    _trace_ids = trace_ids


class LogContext(logging.Filter):
    """Adds `request_id`, `task_id` and, with tracing, `trace_id`/`span_id` where they apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "task_id", None) is None:
            record.task_id = _task_id(record)
        ids = _trace_ids() if _trace_ids is not None else None
        record.trace_id, record.span_id = ids if ids else (None, None)
        return True


def _task_id(record: logging.LogRecord) -> str | None:
    # Temporal's activity and workflow loggers attach their context to the record.
    for attribute in ("temporal_activity", "temporal_workflow"):
        context = getattr(record, attribute, None)
        if isinstance(context, dict) and isinstance(context.get("workflow_id"), str):
            return task_id_of(context["workflow_id"])
    # Not loaded: no activity can be running (and the admin commands never load Temporal).
    if "temporalio.activity" in sys.modules:
        from temporalio import activity

        if activity.in_activity():  # any other logger, called from inside an activity
            return task_id_of(activity.info().workflow_id)
    return None


class Redactor(logging.Filter):
    """Rewrites a record's message and traceback so that no credential is logged."""

    PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
        # Authorization, Cookie and API-key headers, in a dump or a repr: the whole value.
        (
            re.compile(
                r"(?i)\b((?:proxy-)?authorization|cookie|set-cookie|x-api-key)"
                r"([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]*"
            ),
            rf"\1\2{REDACTED}",
        ),
        (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), rf"\1 {REDACTED}"),
        # password=…, "api_key": "…", exosuit_session=…, secret_key: …
        (
            re.compile(
                r"(?i)\b([\w-]*(?:password|passwd|secret|secret[_-]?key|private[_-]?key|token"
                r"|api[_-]?key|session|csrf))([\"']?\s*[:=]\s*[\"']?)[^\s\"',;&)}\]]+"
            ),
            rf"\1\2{REDACTED}",
        ),
        (re.compile(r"whsec_[\w+/=-]+"), f"whsec_{REDACTED}"),  # webhook signing secrets
        (re.compile(r"\bexo_[\w-]{8,}"), f"exo_{REDACTED}"),  # Exosuit's API tokens
        (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # URL passwords
    )

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        for pattern, replacement in self.PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


_FORMATTER = logging.Formatter()
_CONTEXT = ("request_id", "task_id", "trace_id", "span_id")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _CONTEXT:
            if (value := getattr(record, key, None)) is not None:
                entry[key] = value
        fields = getattr(record, "fields", None)  # logger.info(..., extra={"fields": {...}})
        if isinstance(fields, dict):
            entry |= {k: v for k, v in fields.items() if k not in entry}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request_id=… task_id=…] message`, for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(context)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        pairs = [f"{k}={v}" for k in _CONTEXT[:2] if (v := getattr(record, k, None)) is not None]
        record.context = f" [{' '.join(pairs)}]" if pairs else ""
        return super().format(record)


def resolve_format(wanted: LogFormat | None, stream: IO[str]) -> LogFormat:
    """The format asked for, else json unless the stream is a terminal."""
    if wanted:
        return wanted
    return "text" if stream.isatty() else "json"


def configure_logging(
    fmt: LogFormat | None = None,
    *,
    secrets: Iterable[str | None] = (),
    level: str | int = logging.INFO,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route every logger (uvicorn's, Temporal's, warnings, uncaught errors) to one stderr handler."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(LogContext())
    handler.addFilter(Redactor(secrets))
    handler.setFormatter(JsonFormatter() if resolve_format(fmt, stream) == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in UVICORN:  # should a uvicorn config have given them handlers: ours alone, once
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    return handler


def _log_uncaught(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, tb)
        return
    logging.getLogger("exosuit").critical("uncaught %s", kind.__name__, exc_info=(kind, error, tb))


def temporal_core_logging() -> LoggingConfig:
    """Temporal's Rust core logs into Python's logging (so through the handler above), not to stderr."""
    from temporalio.runtime import LogForwardingConfig, LoggingConfig, TelemetryFilter

    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
