"""The Prometheus alert rules and the Grafana dashboard: valid, tested, and in step with
the metrics router/monitoring/metrics.py defines.

promtool (Debian package `prometheus`) must be installed; CI installs it. Without it these
tests fail rather than skip, so unchecked rules never pass as checked.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from router.ami.link import AmiStats
from router.ami.live_calls import LiveCalls
from router.call.holding import HoldQueues
from router.call.pin_checks import PinChecks
from router.call.session import CallServices
from router.configuration.plan_book import PlanBook
from router.fastagi.server import FastAGIServer
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.monitoring.metrics import Metrics
from router.notifications.sms import LogSms, RateLimit, SmsNotices
from router.notifications.undelivered import UndeliveredEvents
from router.notifications.webhooks import WebhookDelivery
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.writer import CdrWriter
from tests.conftest import REPO

ROOT = REPO
ALERTS = ROOT / "config" / "prometheus" / "alerts.yml"
ALERT_TESTS = sorted((ROOT / "tests" / "prometheus").glob("*_test.yml"))
DASHBOARD = ROOT / "config" / "grafana" / "hotline400.json"

METRIC_NAME = re.compile(r"(?<![\w:])hotline400_[a-z0-9_]+")
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "1h", "$number": ".*"}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed, so the alert rules cannot be checked: "
            "apt-get install prometheus (Debian/Ubuntu), or put promtool on PATH"
        )
    return subprocess.run(
        [path, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def defined_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name a Metrics exposes, with every figure it can watch bound to the
    real object it reads."""
    tmp = tmp_path_factory.mktemp("metrics")
    plans = PlanBook(ROOT / "config", ZoneInfo("Asia/Shanghai"))
    store = SQLiteStore(tmp / "hotline400.db", zone=ZoneInfo("Asia/Shanghai"))
    cdrs = CdrWriter(store, Journal(tmp / "cdr.journal"))
    alerts = BalanceAlerts()
    services = CallServices(
        plans=plans,
        cdrs=cdrs,
        accounting=Accounting(
            store, alerts, ZoneInfo("Asia/Shanghai"), balance_seen=lambda *_: None
        ),
        dial_template="Local/{number}@phones",
        clock=lambda: datetime.now(ZoneInfo("Asia/Shanghai")),
    )
    metrics = Metrics(lambda number: number in plans.numbers())
    metrics.watch_listener(FastAGIServer(services, [ipaddress.ip_network("127.0.0.1/32")]))
    metrics.watch_cdr_writer(cdrs)
    metrics.watch_plans(plans)
    metrics.watch_balance_alerts(alerts)
    ami = AmiStats(connected=True, connects=1, disconnects=0, failed_attempts=0, events=0)
    metrics.watch_ami(lambda: True, lambda: ami)
    metrics.watch_webhooks(WebhookDelivery(UndeliveredEvents(tmp)))
    sms = SmsNotices(LogSms(), RateLimit(1, 1.0), plans.get, UndeliveredEvents(tmp, "sms"))
    metrics.watch_sms(sms)
    metrics.watch_kept(
        webhooks=UndeliveredEvents(tmp), sms=sms.kept, low_balance=UndeliveredEvents(tmp, "lb")
    )
    metrics.watch_hold_queues(HoldQueues(LiveCalls()))
    metrics.watch_pin_checks(PinChecks())
    return {
        family.name + suffix
        for family in metrics.registry.collect()
        for suffix in SAMPLE_SUFFIXES[family.type]
    }


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def query_panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_queries() -> list[str]:
    return [target["expr"] for panel in query_panels() for target in panel["targets"]]


def alert_expressions() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


# --- alert rules ----------------------------------------------------------------------------


def test_the_alert_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", ALERTS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    assert ALERT_TESTS, "no promtool unit tests in tests/prometheus"
    result = promtool("test", "rules", *ALERT_TESTS)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_use_only_metrics_the_router_defines(defined_names: set[str]) -> None:
    used = {name for expr in alert_expressions() for name in METRIC_NAME.findall(expr)}

    assert used, "the alert rules read no hotline400 metric"
    assert used <= defined_names, f"not defined by the metrics module: {used - defined_names}"


def test_alerts_cover_ami_errors_cdrs_caps_answer_rate_fraud_and_kept_records() -> None:
    names = {
        rule["alert"]
        for group in yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }

    assert {
        "Hotline400AmiDown",
        "Hotline400ErrorRate",
        "Hotline400CdrWriteFailures",
        "Hotline400CdrSpoolGrowing",
        "Hotline400CdrJournalLinesQuarantined",
        "Hotline400CapReached",
        "Hotline400AnswerRateCollapse",
        "Hotline400NightInternationalCalls",
        "Hotline400InternationalShareHigh",
        "Hotline400CrmUndelivered",
        "Hotline400TextMessagesKept",
        "Hotline400LowBalanceWarningsKept",
        "Hotline400SpoolWriteFailing",
    } <= names


# --- the dashboard --------------------------------------------------------------------------


def test_every_dashboard_panel_queries_only_metrics_the_router_defines(
    defined_names: set[str],
) -> None:
    for panel in query_panels():
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = set(METRIC_NAME.findall(target["expr"]))
            assert used, f"panel {panel['title']!r} queries no hotline400 metric"
            assert used <= defined_names, (
                f"panel {panel['title']!r} reads {used - defined_names}, "
                "which router/monitoring/metrics.py does not define"
            )


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool has no expression checker, so each query becomes a recording rule."""
    rules = []
    for index, expr in enumerate(dashboard_queries()):
        for variable, example in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, example)
        assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expr})
    rules_file = tmp_path / "dashboard_rules.yml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = promtool("check", "rules", rules_file)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_offers_a_400_number_variable_that_call_panels_follow() -> None:
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}

    number = variables["number"]
    assert number["definition"] == "label_values(hotline400_calls_total, number)"
    assert number["includeAll"] and number["multi"]
    calls = [expr for expr in dashboard_queries() if "hotline400_calls_total" in expr]
    assert calls and all('number=~"$number"' in expr for expr in calls)


def test_the_dashboard_shows_calls_latency_sessions_ami_cdr_backlog_and_caps() -> None:
    queries = "\n".join(dashboard_queries())

    for metric in (
        "hotline400_calls_total",
        "hotline400_forwards_total",
        "hotline400_rejections_total",
        "hotline400_pin_failures_total",
        "hotline400_pin_entries_unchecked_total",
        "hotline400_agi_sessions_in_flight",
        "hotline400_ami_connected",
        "hotline400_cdr_queue_depth",
        "hotline400_cdr_spooled_ops",
        "hotline400_cdr_spool_bytes",
        "hotline400_caps_reached_total",
    ):
        assert metric in queries, f"no panel shows {metric}"
    for quantile in ("0.5", "0.9", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le) (rate(hotline400_decision" in queries


def test_the_dashboard_shows_menus_surveys_crm_delivery_and_hold_queues() -> None:
    queries = "\n".join(dashboard_queries())

    for metric in (
        "hotline400_menu_exits_total",
        "hotline400_surveys_total",
        "hotline400_survey_score_sum",
        "hotline400_survey_score_count",
        "hotline400_webhook_events_total",
        "hotline400_hold_queue_length",
        "hotline400_hold_wait_seconds_bucket",
    ):
        assert metric in queries, f"no panel shows {metric}"
        per_number = [q for q in dashboard_queries() if metric in q and "{number" in q]
        assert all('number=~"$number"' in q for q in per_number)


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        assert grid["x"] + grid["w"] <= 24
        taken |= cells
