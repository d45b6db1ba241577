"""deploy/prometheus's alert rules and deploy/grafana's dashboard use only metrics Exosuit exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from web.metrics import Metrics

ROOT = Path(__file__).parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "exosuit-dashboard.json"
PROMETHEUS_OWN = {"up"}  # what Prometheus records about each scrape
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def web_series() -> set[str]:
    """Every series name the web app's /metrics can show."""
    registry = Metrics(reports=None).registry  # type: ignore[arg-type]  # collecting reads no reports
    return {family.name + end for family in registry.collect() for end in SUFFIXES[family.type]}


def worker_series() -> set[str]:
    """The worker's own counters (the Temporal runtime adds `_total`)."""
    sources = [ROOT / "activities" / "metering.py", ROOT / "exosuit" / "cli" / "reconciler.py"]
    names = {n for path in sources for n in re.findall(r'create_counter\(\s*"(\w+)"', path.read_text())}
    assert names, "the worker's counters were not found where they are made"
    return {f"{name}_total" for name in names}


def used_by(expr: str) -> set[str]:
    """Metric names an expression selects (exosuit's own, and Prometheus's `up`)."""
    return set(re.findall(r"\b(exosuit_\w+|up)\b(?=\s*[{\[)\s]|$)", expr))


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_web_app_and_the_worker_name_metrics_by_prometheus_conventions() -> None:
    exported = web_series() | worker_series()
    assert "exosuit_cost_usd_total" in exported and "exosuit_model_calls_total" in exported
    assert "exosuit_http_request_duration_seconds_bucket" in exported
    assert not [name for name in exported if name.endswith(("_ms", "_milliseconds"))]
    assert "exosuit_worker_model_calls_total" in exported


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule["alert"])
def test_every_alert_selects_metrics_the_app_exports_and_says_what_it_means(rule: dict[str, Any]) -> None:
    used = used_by(rule["expr"])
    assert used, rule["expr"]
    assert used <= web_series() | worker_series() | PROMETHEUS_OWN, used
    assert rule["labels"]["severity"] in ("page", "ticket")
    assert rule["annotations"]["summary"]


@pytest.mark.parametrize("expr", dashboard_exprs())
def test_every_dashboard_panel_queries_metrics_the_app_exports(expr: str) -> None:
    used = used_by(expr)
    assert used and used <= web_series() | worker_series(), expr


@pytest.mark.skipif(not shutil.which("promtool"), reason="`make test-tools` installs promtool")
def test_promtool_accepts_the_rules() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
