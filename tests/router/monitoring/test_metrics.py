"""The router's metrics: what each event counts, the figures read at scrape time, /metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import router.monitoring.metrics as metrics_module
from dialplan.decision import RejectReason
from router.ami.link import AmiStats
from router.call.session import CallServices
from router.configuration.plan_book import PlanBook
from router.fastagi.server import FastAGIServer
from router.money.accounting import Accounting
from router.money.balance_alerts import BalanceAlerts
from router.monitoring.metrics import DECISION_BUCKETS, SESSION_BUCKETS, Metrics
from router.storage.cdr import ForwardReason, Outcome
from router.storage.spool import Journal
from router.storage.sqlite import SQLiteStore
from router.storage.writer import CdrWriter
from tests.conftest import TESTS

SHANGHAI = ZoneInfo("Asia/Shanghai")
SERVED = "4008207788"
E2E_CONFIG = TESTS / "e2e_config"


def served_only(number: str) -> bool:
    return number == SERVED


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=SHANGHAI)


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def label_values(metrics: Metrics) -> set[str]:
    return {
        label
        for family in metrics.registry.collect()
        for sample in family.samples
        for label in sample.labels.values()
    }


async def scrape(port: int, request: bytes = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    return response


def body_of(response: bytes) -> str:
    return response.partition(b"\r\n\r\n")[2].decode()


def sample_names(exposition: str) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(served_only)


@pytest.fixture
async def endpoint(metrics: Metrics) -> AsyncIterator[int]:
    port = await metrics.serve("127.0.0.1", 0)
    yield port
    await metrics.close()


# --- events of the call path ----------------------------------------------------------------


def test_calls_are_counted_by_400_number_and_outcome(metrics: Metrics) -> None:
    metrics.call_ended(SERVED, Outcome.ANSWERED)
    metrics.call_ended(SERVED, Outcome.ANSWERED)
    metrics.call_ended(SERVED, Outcome.BUSY)

    assert value(metrics, "hotline400_calls_total", number=SERVED, outcome="answered") == 2
    assert value(metrics, "hotline400_calls_total", number=SERVED, outcome="busy") == 1


def test_a_number_without_a_plan_is_counted_as_other_so_labels_stay_bounded(
    metrics: Metrics,
) -> None:
    for number in ("4001111111", "4002222222", ""):
        metrics.call_ended(number, Outcome.UNKNOWN_NUMBER)
        metrics.pin_failed(number)
        metrics.cap_reached(number, "monthly_calls")

    assert value(metrics, "hotline400_calls_total", number="other", outcome="unknown_number") == 3
    assert value(metrics, "hotline400_pin_failures_total", number="other") == 3
    assert "4001111111" not in label_values(metrics)


def test_a_value_outside_a_labels_closed_set_is_counted_as_other_never_as_itself(
    metrics: Metrics,
) -> None:
    caller = "13812345678"
    metrics.call_arrived(caller, at(12))
    metrics.call_ended(SERVED, "hung up oddly")
    metrics.rejected("some new reason")
    metrics.cap_reached(SERVED, "weekly_cost")

    assert value(metrics, "hotline400_calls_by_caller_kind_total", kind="other") == 1
    assert value(metrics, "hotline400_calls_total", number=SERVED, outcome="other") == 1
    assert value(metrics, "hotline400_rejections_total", reason="other") == 1
    assert value(metrics, "hotline400_caps_reached_total", number=SERVED, kind="other") == 1
    assert not {caller, "hung up oddly", "some new reason", "weekly_cost"} & label_values(metrics)


def test_every_rejection_reason_and_caller_kind_is_exposed_from_zero(metrics: Metrics) -> None:
    for reason in RejectReason:
        assert value(metrics, "hotline400_rejections_total", reason=reason.value) == 0
    for kind in ("mobile", "fixed", "service", "international", "unknown"):
        assert value(metrics, "hotline400_calls_by_caller_kind_total", kind=kind) == 0
        assert value(metrics, "hotline400_night_calls_total", kind=kind) == 0


def test_rejections_are_counted_by_reason(metrics: Metrics) -> None:
    metrics.rejected(RejectReason.BLACKLISTED)
    metrics.rejected(RejectReason.CLOSED)
    metrics.rejected(RejectReason.CLOSED)

    assert value(metrics, "hotline400_rejections_total", reason="blacklisted") == 1
    assert value(metrics, "hotline400_rejections_total", reason="closed") == 2


def test_only_legs_after_busy_or_no_answer_count_as_forwards(metrics: Metrics) -> None:
    metrics.leg_dialled(ForwardReason.PRIMARY)
    metrics.leg_dialled(ForwardReason.BUSY)
    metrics.leg_dialled(ForwardReason.NO_ANSWER)
    metrics.leg_dialled(ForwardReason.NO_ANSWER)

    assert value(metrics, "hotline400_forwards_total", reason="busy") == 1
    assert value(metrics, "hotline400_forwards_total", reason="no_answer") == 2
    assert value(metrics, "hotline400_forwards_total", reason="primary") is None


def test_calls_arriving_late_at_night_are_counted_by_caller_kind(metrics: Metrics) -> None:
    metrics.call_arrived("international", at(23, 30))
    metrics.call_arrived("international", at(2))
    metrics.call_arrived("international", at(12))
    metrics.call_arrived("mobile", at(5, 59))
    metrics.call_arrived("mobile", at(6))

    assert value(metrics, "hotline400_calls_by_caller_kind_total", kind="international") == 3
    assert value(metrics, "hotline400_night_calls_total", kind="international") == 2
    assert value(metrics, "hotline400_night_calls_total", kind="mobile") == 1


def test_the_night_band_can_be_set_without_crossing_midnight() -> None:
    metrics = Metrics(served_only, night_hours=(1, 5))
    for hour in (0, 1, 4, 5):
        metrics.call_arrived("fixed", at(hour))

    assert value(metrics, "hotline400_night_calls_total", kind="fixed") == 2


def test_pin_failures_and_caps_reached_are_counted_by_number(metrics: Metrics) -> None:
    metrics.pin_failed(SERVED)
    metrics.pin_failed(SERVED)
    metrics.cap_reached(SERVED, "monthly_calls")
    metrics.cap_reached(SERVED, "talk_budget")

    assert value(metrics, "hotline400_pin_failures_total", number=SERVED) == 2
    labels = {"number": SERVED}
    assert value(metrics, "hotline400_caps_reached_total", **labels, kind="monthly_calls") == 1
    assert value(metrics, "hotline400_caps_reached_total", **labels, kind="talk_budget") == 1


def test_surveys_are_counted_by_how_they_ended_and_scores_averaged_per_number(
    metrics: Metrics,
) -> None:
    metrics.surveyed(SERVED, "scored", 5)
    metrics.surveyed(SERVED, "scored", 2)
    metrics.surveyed(SERVED, "hung_up", None)
    metrics.surveyed("4001111111", "made-up", None)

    assert value(metrics, "hotline400_surveys_total", number=SERVED, result="scored") == 2
    assert value(metrics, "hotline400_surveys_total", number=SERVED, result="hung_up") == 1
    assert value(metrics, "hotline400_surveys_total", number="other", result="other") == 1
    assert value(metrics, "hotline400_survey_score_count", number=SERVED) == 2
    assert value(metrics, "hotline400_survey_score_sum", number=SERVED) == 7
    assert value(metrics, "hotline400_survey_score_bucket", number=SERVED, le="2.0") == 1


def test_a_balance_is_flagged_while_under_its_warning_and_cleared_after_a_top_up(
    metrics: Metrics,
) -> None:
    metrics.balance_seen(SERVED, Decimal("49.99"), Decimal("50.00"))
    assert value(metrics, "hotline400_balance_below_warning", number=SERVED) == 1

    metrics.balance_seen(SERVED, Decimal("50.00"), Decimal("50.00"))
    assert value(metrics, "hotline400_balance_below_warning", number=SERVED) == 0


def test_a_balance_is_flagged_only_for_a_number_a_plan_serves() -> None:
    """Prepaid accounts may have no plan loaded (not yet, or no more): their balances, all
    under one "other" label, would overwrite one another and fire a low-balance alert
    naming no number; a number whose plan is gone takes its flag with it."""
    serving = {SERVED}
    metrics = Metrics(lambda number: number in serving)
    metrics.balance_seen(SERVED, Decimal("1.00"), Decimal("50.00"))
    metrics.balance_seen("4000000777", Decimal("1.00"), Decimal("50.00"))
    metrics.balance_seen("4000000778", Decimal("90.00"), Decimal("50.00"))

    assert value(metrics, "hotline400_balance_below_warning", number=SERVED) == 1
    assert value(metrics, "hotline400_balance_below_warning", number="other") is None

    serving.clear()  # its plan removed at a reload; the next read of its balance
    metrics.balance_seen(SERVED, Decimal("1.00"), Decimal("50.00"))

    assert value(metrics, "hotline400_balance_below_warning", number=SERVED) is None


def test_decision_latency_is_observed_in_seconds_with_buckets_from_10us_to_10ms(
    metrics: Metrics,
) -> None:
    with metrics.decision_timer():
        pass

    assert value(metrics, "hotline400_decision_seconds_count") == 1
    assert value(metrics, "hotline400_decision_seconds_bucket", le=repr(DECISION_BUCKETS[-1])) == 1
    assert DECISION_BUCKETS[0] <= 1e-5 and DECISION_BUCKETS[-1] >= 1e-2


async def test_agi_session_duration_is_observed_in_seconds_up_to_half_an_hour(
    metrics: Metrics,
) -> None:
    with metrics.agi_session_timer():
        await asyncio.sleep(0.01)

    assert value(metrics, "hotline400_agi_session_seconds_count") == 1
    assert 0.01 <= (value(metrics, "hotline400_agi_session_seconds_sum") or 0) < 0.5
    assert SESSION_BUCKETS[-1] == 1800


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(served_only), Metrics(served_only)
    first.call_ended(SERVED, Outcome.ANSWERED)

    assert value(second, "hotline400_calls_total", number=SERVED, outcome="answered") is None


# --- figures read at scrape time ------------------------------------------------------------


@pytest.fixture
def plans(tmp_path: Path) -> PlanBook:
    config = tmp_path / "config"
    shutil.copytree(E2E_CONFIG, config)
    book = PlanBook(config, SHANGHAI)
    book.reload()
    return book


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "hotline400.db", zone=SHANGHAI)


@pytest.fixture
def cdrs(tmp_path: Path, store: SQLiteStore) -> CdrWriter:
    return CdrWriter(store, Journal(tmp_path / "spool" / "cdr.journal"))


@pytest.fixture
async def listener(
    plans: PlanBook, store: SQLiteStore, cdrs: CdrWriter
) -> AsyncIterator[tuple[FastAGIServer, int]]:
    """A real FastAGI listener; its sessions never get as far as a call in these tests."""
    services = CallServices(
        plans=plans,
        cdrs=cdrs,
        accounting=Accounting(store, BalanceAlerts(), SHANGHAI, balance_seen=lambda *_: None),
        dial_template="Local/{number}@phones",
        clock=lambda: at(10),
    )
    server = FastAGIServer(services, [ipaddress.ip_network("127.0.0.1/32")], header_timeout=5.0)
    port = await server.start("127.0.0.1", 0)
    yield server, port
    await server.stop_accepting()
    await server.drain(1.0)


async def test_sessions_in_flight_and_broken_sessions_are_read_from_the_listener(
    metrics: Metrics, listener: tuple[FastAGIServer, int]
) -> None:
    server, port = listener
    metrics.watch_listener(server)
    _, idle = await asyncio.open_connection("127.0.0.1", port)
    async with asyncio.timeout(2):
        while value(metrics, "hotline400_agi_sessions_in_flight") != 1:  # its header unsent
            await asyncio.sleep(0.01)

    idle.write(b"this is not an agi_ header\n\n")
    await idle.drain()
    async with asyncio.timeout(2):
        while value(metrics, "hotline400_agi_sessions_in_flight") != 0:
            await asyncio.sleep(0.01)
    idle.close()

    assert value(metrics, "hotline400_agi_sessions_in_flight") == 0
    assert value(metrics, "hotline400_agi_broken_sessions_total") == 1
    assert value(metrics, "hotline400_agi_refused_connections_total") == 0


def test_cdr_backlog_is_read_from_the_writers_stats(metrics: Metrics, cdrs: CdrWriter) -> None:
    metrics.watch_cdr_writer(cdrs)

    assert value(metrics, "hotline400_cdr_queue_depth") == 0
    assert value(metrics, "hotline400_cdr_write_failures_total") == 0
    assert value(metrics, "hotline400_cdr_spooled_ops") == 0
    assert value(metrics, "hotline400_cdr_spool_bytes") == 0
    assert value(metrics, "hotline400_cdr_journal_quarantined_lines_total") == 0


async def test_journal_lines_moved_aside_are_counted(
    metrics: Metrics, store: SQLiteStore, tmp_path: Path
) -> None:
    journal = Journal(tmp_path / "spool" / "cdr.journal")
    journal.append([{"op": "start"}, {"op": "no-such-op"}])
    cdrs = CdrWriter(store, journal)
    metrics.watch_cdr_writer(cdrs)
    await store.open()

    await cdrs.start()
    await cdrs.close()
    await store.close()

    assert value(metrics, "hotline400_cdr_journal_quarantined_lines_total") == 2


def test_plan_reloads_and_version_are_read_from_the_plan_book(
    metrics: Metrics, plans: PlanBook
) -> None:
    metrics.watch_plans(plans)
    (plans.config_dir / "plans" / "4000000001.yaml").write_text("number: [broken\n")
    plans.reload()

    assert value(metrics, "hotline400_plan_reloads_total", result="ok") == 1
    assert value(metrics, "hotline400_plan_reloads_total", result="failed") == 1
    assert value(metrics, "hotline400_plan_version") == 2
    plan_files = list((plans.config_dir / "plans").glob("*.yaml"))
    assert value(metrics, "hotline400_plans_loaded") == len(plan_files)  # the broken one's kept


def test_the_last_reload_failing_stays_visible_until_a_reload_succeeds(
    metrics: Metrics, plans: PlanBook
) -> None:
    """A counter only says a reload failed once; what the operator must fix is the files
    the latest reload refused, however long ago that was."""
    metrics.watch_plans(plans)
    broken = plans.config_dir / "plans" / "4000000001.yaml"
    fixed = broken.read_text()
    assert value(metrics, "hotline400_plan_last_reload_successful") == 1

    broken.write_text("number: [broken\n")
    plans.reload()
    assert value(metrics, "hotline400_plan_last_reload_successful") == 0

    broken.write_text(fixed)
    plans.reload()
    assert value(metrics, "hotline400_plan_last_reload_successful") == 1


def test_low_balance_warnings_are_read_from_the_alerts(metrics: Metrics) -> None:
    alerts = BalanceAlerts()
    metrics.watch_balance_alerts(alerts)
    alerts.check(SERVED, Decimal("60.00"), Decimal("40.00"), Decimal("50.00"))

    assert value(metrics, "hotline400_low_balance_warnings_total") == 1
    assert value(metrics, "hotline400_low_balance_webhook_warnings_total", result="sent") == 0


def test_ami_state_is_absent_until_an_ami_link_is_watched(metrics: Metrics) -> None:
    assert value(metrics, "hotline400_ami_connected") is None
    link_up = [False]
    metrics.watch_ami(lambda: link_up[0])

    assert value(metrics, "hotline400_ami_connected") == 0
    link_up[0] = True
    assert value(metrics, "hotline400_ami_connected") == 1


def test_the_ami_links_logins_losses_and_failed_attempts_are_counted(metrics: Metrics) -> None:
    stats = [AmiStats(connected=True, connects=2, disconnects=1, failed_attempts=5, events=40)]
    metrics.watch_ami(lambda: stats[0].connected, lambda: stats[0])

    assert value(metrics, "hotline400_ami_logins_total") == 2
    assert value(metrics, "hotline400_ami_disconnects_total") == 1
    assert value(metrics, "hotline400_ami_failed_attempts_total") == 5
    stats[0] = AmiStats(connected=True, connects=3, disconnects=2, failed_attempts=5, events=41)
    assert value(metrics, "hotline400_ami_logins_total") == 3


def test_a_source_watched_twice_is_refused(metrics: Metrics) -> None:
    metrics.watch_ami(lambda: True)

    with pytest.raises(ValueError, match="already watched"):
        metrics.watch_ami(lambda: True)


# --- the /metrics endpoint ------------------------------------------------------------------


async def test_get_metrics_answers_the_prometheus_text_format(
    metrics: Metrics, endpoint: int
) -> None:
    metrics.call_ended(SERVED, Outcome.ANSWERED)
    metrics.watch_ami(lambda: True)

    response = await scrape(endpoint)

    status, _, _ = response.partition(b"\r\n")
    assert status == b"HTTP/1.1 200 OK"
    assert b"Content-Type: text/plain; version=0.0.4" in response
    body = body_of(response)
    assert f'hotline400_calls_total{{number="{SERVED}",outcome="answered"}} 1.0' in body
    assert "hotline400_ami_connected 1.0" in body


async def test_the_endpoint_serves_every_metric_the_registry_holds(
    metrics: Metrics, endpoint: int, plans: PlanBook, cdrs: CdrWriter
) -> None:
    metrics.call_ended(SERVED, Outcome.ANSWERED)
    metrics.pin_failed(SERVED)
    metrics.cap_reached(SERVED, "daily_cost")
    metrics.balance_seen(SERVED, Decimal("1.00"), Decimal("50.00"))
    metrics.watch_plans(plans)
    metrics.watch_cdr_writer(cdrs)

    served = sample_names(body_of(await scrape(endpoint)))

    assert served == sample_names(generate_latest(metrics.registry).decode())


async def test_the_endpoint_serves_no_created_series_beside_counters_and_histograms(
    metrics: Metrics, endpoint: int
) -> None:
    """In the classic text format a counter's creation time is a gauge series of its own
    (`hotline400_calls_created`): one more series for every number and outcome, which no
    rule or panel reads and which doubles what every scrape renders and stores."""
    metrics.call_ended(SERVED, Outcome.ANSWERED)
    metrics.surveyed(SERVED, "scored", 5)
    metrics.webhook_posted(0.02)

    body = body_of(await scrape(endpoint))

    assert f'hotline400_calls_total{{number="{SERVED}",outcome="answered"}} 1.0' in body
    assert "hotline400_survey_score_count" in body
    assert [line for line in body.splitlines() if "_created" in line] == []


async def test_head_answers_headers_only(endpoint: int) -> None:
    response = await scrape(endpoint, b"HEAD /metrics HTTP/1.1\r\n\r\n")

    assert response.startswith(b"HTTP/1.1 200 OK")
    assert response.endswith(b"\r\n\r\n")


async def test_other_paths_and_methods_are_refused(endpoint: int) -> None:
    assert (await scrape(endpoint, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 404")
    refused = await scrape(endpoint, b"POST /metrics HTTP/1.1\r\n\r\n")
    assert refused.startswith(b"HTTP/1.1 405")


async def test_a_client_that_sends_nothing_is_closed_after_the_request_timeout(
    endpoint: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics_module, "REQUEST_TIMEOUT_S", 0.1)
    reader, writer = await asyncio.open_connection("127.0.0.1", endpoint)

    async with asyncio.timeout(2):
        assert await reader.read() == b""
    writer.close()


async def test_an_oversized_request_is_closed_without_an_answer(endpoint: int) -> None:
    request = b"GET /metrics HTTP/1.1\r\nX-Junk: " + b"x" * 20000 + b"\r\n\r\n"

    assert await scrape(endpoint, request) == b""


async def test_close_stops_listening(metrics: Metrics) -> None:
    port = await metrics.serve("127.0.0.1", 0)
    await metrics.close()

    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_serving_twice_is_refused(metrics: Metrics, endpoint: int) -> None:
    with pytest.raises(RuntimeError, match="already serving"):
        await metrics.serve("127.0.0.1", 0)
