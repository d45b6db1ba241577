"""Traces over OTLP/HTTP: one trace from the HTTP request through the workflow into its activities.

Off unless an endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`): then nothing of the
OpenTelemetry SDK or its exporter is even imported, and the app and the Temporal client are
built without instrumentation. On, one `TracerProvider` with a batching OTLP/HTTP exporter
serves the web app (FastAPI's own telemetry, `fastapi_telemetry`) and the Temporal client
(`temporal_interceptors`: Temporal's `TracingInterceptor` carries the context through
workflow and activity headers; workers built from that client trace too). The provider is
this module's, not the global one, so a test can start and stop it.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from exosuit.observability import logs

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

# Probes, scrapes and static files would drown the traces that matter.
UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")
UNTRACED_PREFIXES = ("/static/",)

_provider: TracerProvider | None = None


def start_tracing(endpoint: str | None, service_name: str) -> bool:
    """Export spans to `endpoint` (OTLP/HTTP, path /v1/traces); False, and nothing done, if unset."""
    global _provider
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    stop_tracing()
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    # Headers, timeout, compression and certificates come from the standard OTEL_EXPORTER_OTLP_* variables.
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider = provider
    logs.correlate_with(_current_ids)
    return True


def stop_tracing() -> None:
    """Export what is buffered and stop (at exit; a test's end)."""
    global _provider
    provider, _provider = _provider, None
    logs.correlate_with(None)
    if provider is not None:
        provider.shutdown()  # flushes the batch processor


def tracing() -> bool:
    return _provider is not None


def temporal_interceptors() -> list[Interceptor]:
    """The Temporal client's interceptors: tracing when it is on, else none."""
    if _provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(_provider.get_tracer("exosuit.temporal"))]


def fastapi_telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry: server spans (but for probes and static files) when tracing is on.

    Metrics stay with Prometheus (/metrics) and logs with the log handler: only traces here.
    """
    if _provider is None:
        return {"tracing": False, "metrics": False, "logs": False}
    return {"tracer_provider": _provider, "metrics": False, "logs": False, "exclude": _untraced}


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    path = str(scope.get("path", ""))
    return path in UNTRACED_PATHS or path.startswith(UNTRACED_PREFIXES)


def record_error(error: BaseException) -> None:
    """Mark the current span (a request's server span, say) as failed by `error`, when tracing."""
    if _provider is None:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _current_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
