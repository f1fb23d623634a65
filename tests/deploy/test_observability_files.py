"""deploy/: the Grafana dashboard and the Prometheus alerts only use metrics the code exports."""

import json
import re
from pathlib import Path

import pytest
import yaml

from sqs_app import metrics_views

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "wipsie-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "rate", "irate", "increase", "histogram_quantile", "absent", "by", "on",
    "and", "or", "unless", "without", "label_values", "le", "offset", "bool",
}  # fmt: skip


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every metric name /metrics exposes (its TYPE lines), with the series suffixes of each."""
    registry = metrics_views.REGISTRY
    names = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names |= {family.name + suffix for suffix in ("_bucket", "_count", "_sum")}
    from sqs_app.metrics import CONSUMERS, LAST_POLL_AGE, OLDEST_AGE, QUEUE_GAUGES

    # The queue collector's gauges are yielded only at scrape time.
    scraped = {OLDEST_AGE, "wipsie_sqs_up", "wipsie_messages_open", CONSUMERS, LAST_POLL_AGE}
    return names | set(QUEUE_GAUGES) | scraped


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|on|without)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"label_values\((\w+),\s*\w+\)", r"\1", expr)  # a variable's query: metric, label
    tokens = set(re.findall(r"\b[a-zA-Z_][a-zA-Z0-9_]*\b", expr))
    return {t for t in tokens if t not in PROMQL_WORDS and not t.startswith("$")}


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_every_alert_names_only_exported_metrics(exported):
    for rule in alert_rules():
        assert metric_names(rule["expr"]) <= exported, rule["alert"]
        assert metric_names(rule["expr"]), rule["alert"]


def test_the_alerts_cover_queue_age_dead_letters_failure_rate_and_no_worker():
    by_metric = {rule["alert"]: metric_names(rule["expr"]) for rule in alert_rules()}

    assert "sqs_queue_oldest_message_age_seconds" in by_metric["WipsieQueueBacklogOld"]
    assert "sqs_dlq_size" in by_metric["WipsieDeadLetters"]
    assert "wipsie_tasks_total" in by_metric["WipsieTaskFailureRate"]
    assert {"sqs_queue_size", "wipsie_tasks_total"} <= by_metric["WipsieNoWorker"]
    assert "wipsie_queue_last_poll_age_seconds" in by_metric["WipsieConsumersStoppedPolling"]
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["for"]


def test_the_dashboard_plots_only_exported_metrics_and_all_the_spec_names(exported):
    used = set()
    for expr in dashboard_exprs():
        names = metric_names(expr)
        assert names <= exported, expr
        used |= names

    spec = {"api_requests_total", "api_request_duration_seconds_bucket", "sqs_queue_size"}
    assert spec | {"task_processing_duration_seconds_bucket", "sqs_dlq_size"} <= used


def test_the_dashboard_is_grafana_json_with_unique_panel_ids():
    dashboard = json.loads(DASHBOARD.read_text())

    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"] == "Wipsie"
    assert all(panel["datasource"]["type"] == "prometheus" for panel in dashboard["panels"])
