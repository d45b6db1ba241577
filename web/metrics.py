"""`GET /metrics` (Prometheus text): the read model counted at each scrape (by one replica
at a time), and this process's decisions and requests. The worker's own and the Temporal
SDK's metrics are on EXOSUIT_WORKER_METRICS_PORT.

Each app has a registry of its own (tests run many apps in one process).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from exosuit.storage.leases import ReporterLease
from exosuit.storage.reports import Reports

WAIT_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 48 * 3600, float("inf"))
# An API answer is milliseconds; /wait and the event streams hold up to a minute.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf"))
USAGE = (  # all-time totals from the read model: counters (`_total`), by team
    ("model_calls", "Model calls made"),
    ("prompt_tokens", "Prompt tokens used"),
    ("completion_tokens", "Completion tokens used"),
    ("cost_usd", "USD spent on models"),
)


class _UsageTotals(Collector):
    """The read model's all-time usage, exposed as counters from the last snapshot."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, float]]] = []

    def collect(self) -> Iterator[Metric]:
        for name, text in USAGE:
            family = CounterMetricFamily(f"exosuit_{name}", f"{text}, by team (all time).", labels=["team"])
            for team, values in self.rows:
                family.add_metric([team], values[name])
            yield family


class Metrics:
    def __init__(self, reports: Reports, lease: ReporterLease | None = None) -> None:
        """`lease`: the database-wide series (tasks, gates, deliveries, usage) come from the one
        replica that holds it (exosuit/storage/leases.py); None: from this process alone."""
        self._reports, self._lease = reports, lease
        self.registry = registry = CollectorRegistry()
        decisions = "Decisions made through this process, by action and outcome."
        self.decisions = Counter("exosuit_decisions", decisions, ["action", "outcome"], registry=registry)
        waits = "How long a gate waited for the decision that closed it."
        self.gate_wait = Histogram(
            "exosuit_gate_wait_seconds", waits, ["kind"], buckets=WAIT_BUCKETS, registry=registry
        )
        shed = "Requests answered 429 at once because this process served all it takes (admission)."
        self.shed = Counter("exosuit_requests_shed", shed, ["pool"], registry=registry)
        requests = "HTTP requests served by this process: seconds, by method, route template and status."
        self.http_requests = Histogram(
            "exosuit_http_request_duration_seconds",
            requests,
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        in_flight = "Requests being served by this process, by admission pool (work, waiting)."
        self.in_flight = Gauge("exosuit_requests_in_flight", in_flight, ["pool"], registry=registry)
        gates = "Open gates, by kind and team."
        self._open_gates = Gauge("exosuit_open_gates", gates, ["kind", "team"], registry=registry)
        self._tasks = Gauge(
            "exosuit_tasks", "Tasks, by status and team.", ["status", "team"], registry=registry
        )
        deliveries = "Webhook messages, by delivery status (pending, delivered, failed, cancelled) and team."
        self._deliveries = Gauge(
            "exosuit_webhook_deliveries", deliveries, ["status", "team"], registry=registry
        )
        reporter = "1 on the one web process that reports the database-wide series, else 0."
        self._reporter = Gauge("exosuit_read_model_reporter", reporter, registry=registry)
        self._usage = _UsageTotals()
        registry.register(self._usage)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).observe(seconds)

    async def scrape(self) -> tuple[bytes, str]:
        """The text exposition, with the read model counted now (by the reporting replica)."""
        for gauge in (self._open_gates, self._tasks, self._deliveries):
            gauge.clear()  # a team or a kind with nothing left is not reported at its last value
        self._usage.rows = []
        reporting = self._lease is None or await self._lease.held()
        self._reporter.set(1 if reporting else 0)
        if reporting:
            await self._count_read_model()
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def close(self) -> None:
        """Let another replica report the read model from now on."""
        if self._lease is not None:
            await self._lease.release()

    async def _count_read_model(self) -> None:
        snapshot = await self._reports.snapshot()
        for kind, team, count in snapshot.open_gates:
            self._open_gates.labels(kind, team).set(count)
        for status, team, count in snapshot.tasks:
            self._tasks.labels(status, team).set(count)
        for status, team, count in snapshot.webhook_deliveries:
            self._deliveries.labels(status, team).set(count)
        self._usage.rows = [
            (
                row.team,
                {
                    "model_calls": float(row.calls),
                    "prompt_tokens": float(row.prompt_tokens or 0),
                    "completion_tokens": float(row.completion_tokens or 0),
                    "cost_usd": float(row.cost_usd or 0.0),
                },
            )
            for row in snapshot.usage
        ]
