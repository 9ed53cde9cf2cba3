"""deploy/prometheus: every alert reads a series Cedar or Temporal's SDK exports, and links a runbook that
docs/operations.md has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from core.metrics import CedarMetrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# Temporal's SDK metrics the rules read (names as core/metrics.py exposes them; tests/operations/test_metrics.py
# sees the latency series after real runs).
SDK_SERIES = {
    "temporal_workflow_task_execution_failed",
    "temporal_activity_execution_failed",
    "temporal_activity_execution_latency_count",
    "temporal_activity_schedule_to_start_latency_bucket",
    "temporal_workflow_task_schedule_to_start_latency_bucket",
}
_SERIES = re.compile(r"\b(?:cedar|temporal)_[a-z0-9_]+\b")


def cedar_series() -> set[str]:
    names: set[str] = set()
    for family in CedarMetrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "count", "sum")}
        else:
            names.add(family.name)
    return names


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_reads_series_that_cedar_or_the_sdk_exports() -> None:
    known = cedar_series() | SDK_SERIES
    assert {"cedar_http_requests_total", "cedar_webhook_events_total", "cedar_invoices_failed"} <= known
    alerts = rules()
    assert len({rule["alert"] for rule in alerts}) == len(alerts)
    for rule in alerts:
        used = set(_SERIES.findall(rule["expr"]))
        assert used, f"{rule['alert']} reads no Cedar or Temporal series"
        assert used <= known, f"{rule['alert']} reads unknown series {sorted(used - known)}"
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}


def test_the_rules_cover_what_issue_18_names() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    for series in (
        "temporal_workflow_task_execution_failed",
        "temporal_activity_execution_failed",
        "schedule_to_start_latency",
        'cedar_webhook_events_total{outcome="rejected"}',
        "cedar_invoices_failed",
        'cedar_stripe_events{status="received"}',
        "cedar_dunning_families",
        "cedar_billing_attention_families",
    ):
        assert series in exprs


def test_every_alert_links_a_runbook_section_of_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    anchors = {_anchor(line.lstrip("#").strip()) for line in guide.splitlines() if line.startswith("#")}
    for rule in rules():
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md"
        assert anchor in anchors, f"{rule['alert']}: no section #{anchor} in docs/operations.md"


def test_the_scrape_example_loads_the_rules_and_reaches_both_processes() -> None:
    config = yaml.safe_load(SCRAPE.read_text())
    assert config["rule_files"] == [RULES.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["cedar-api"]["authorization"]["type"] == "Bearer"
    assert jobs["cedar-worker"]["static_configs"][0]["targets"] == ["worker:9464"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["worker"]["environment"]["CEDAR_WORKER_METRICS_PORT"] == "9464"


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
