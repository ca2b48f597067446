"""CRM screen pop and call events, end to end: the daemon, the simulator over FastAGI, and a
real HTTP receiver that answers, is slow, refuses connections, never answers or errs.

Whatever the CRM does, a call carries the same AGI commands as a call without a CRM and
takes no longer; events no CRM took are kept and `hotline400 webhooks replay` sends them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from router.cli import main
from router.configuration.settings import PinGuardSettings
from router.monitoring.logs import configure_logging
from router.notifications import undelivered
from router.notifications.undelivered import UndeliveredEvents
from router.simulation.asterisk_agi import CallerHangup
from tests.conftest import (
    E2E_CONFIG,
    HttpReceiver,
    Received,
    call,
    eventually,
    finished_cdr,
    running_router,
)
from tests.router.monitoring.test_router_operability import sample, scrape

KEY_ENV = "HOTLINE400_TEST_CRM_KEY"
KEY = "a-long-random-key-shared-with-the-crm"
CRM_NUMBER = "4000000020"
PLAIN_NUMBER = "4000000001"  # the same route, no CRM


def crm_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    """The e2e configuration plus a plan whose subscriber has a CRM at `url`."""
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    with (config / "router.yaml").open("a", encoding="utf-8") as settings:
        settings.write("crm_allowed_networks: [127.0.0.0/8]  # the test CRMs listen here\n")
    (config / "plans" / f"{CRM_NUMBER}.yaml").write_text(
        f"""number: "{CRM_NUMBER}"
name: A subscriber with a CRM
crm: {{url: "{url}", secret_env: {KEY_ENV}}}
rules:
  - name: shandong
    when: {{callers: {{provinces: [山东]}}}}
    target: "13800000011"
default: {{target: "13800000011"}}
{extra}""",
        encoding="utf-8",
    )
    return config


def verified(request: Received, now: float | None = None) -> dict:
    """What a receiver does (README "CRM events"): recompute the HMAC-SHA256 of
    `<timestamp>.<body>`, compare in constant time, refuse a timestamp five minutes off."""
    timestamp = request.headers["x-hotline400-timestamp"]
    expected = hmac.new(KEY.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256)
    signature = request.headers["x-hotline400-signature"]
    assert hmac.compare_digest(signature, "v1=" + expected.hexdigest())
    assert abs((now or time.time()) - int(timestamp)) <= 300
    body = json.loads(request.body)
    assert request.headers["x-hotline400-id"] == body["id"]
    assert request.headers["x-hotline400-event"] == body["event"]
    return body


@pytest.fixture(autouse=True)
def crm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


async def test_arrival_answer_and_end_reach_the_crm_signed(tmp_path: Path) -> None:
    async with HttpReceiver("ok") as crm:
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="crm.1")
            await eventually(lambda: len(crm.received) == 3)
            cdr = await finished_cdr(router, "crm.1")
    events = {body["event"]: body for body in map(verified, crm.received)}
    arrived = events["call.arrived"]
    assert arrived["call_id"] == "crm.1" and arrived["number"] == CRM_NUMBER
    assert arrived["caller"] == "053188889999" and arrived["rule"] == "shandong"
    assert arrived["caller_region"] == {"province": "山东", "city": "济南", "area_code": "0531"}
    assert events["call.answered"]["destination"] == "13800000011"
    ended = events["call.ended"]["cdr"]
    assert ended["outcome"] == "answered" and ended["billable_seconds"] == 3
    assert ended["ended_at"] == cdr.ended_at.isoformat()
    assert [leg["destination"] for leg in ended["legs"]] == ["13800000011"]
    assert {r.headers["x-hotline400-id"] for r in crm.received} == {
        "crm.1/arrival",
        "crm.1/answer",
        "crm.1/end",
    }


async def test_every_event_says_when_so_a_receiver_can_order_a_calls_events(
    tmp_path: Path,
) -> None:
    """README: events of one call may arrive out of order after a retry, "order them by their
    kind and `at`": each event has its `at`, the end's that of its CDR's end."""
    async with HttpReceiver(["error", "ok"]) as crm:
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config, webhook_backoff=0.2) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="order.1")
            await eventually(lambda: router.webhooks.stats.delivered == 3)
            cdr = await finished_cdr(router, "order.1")
    bodies = [verified(request) for request in crm.received][1:]  # the first POST failed
    kinds = ["call.arrived", "call.answered", "call.ended"]
    ordered = sorted(bodies, key=lambda body: (kinds.index(body["event"]), body["at"]))
    assert [body["event"] for body in ordered] == kinds
    assert ordered[-1]["at"] == cdr.ended_at.isoformat() == ordered[-1]["cdr"]["ended_at"]
    assert ordered[0]["at"] <= ordered[1]["at"] <= ordered[2]["at"]


@pytest.mark.parametrize("behaviour", ["slow", "silent", "error", "refused"])
async def test_a_slow_dead_or_failing_crm_never_delays_or_changes_a_call(
    tmp_path: Path, behaviour: str
) -> None:
    async with HttpReceiver("ok" if behaviour == "refused" else behaviour, delay=30) as crm:
        url = HttpReceiver.refusing() if behaviour == "refused" else crm.url
        config = crm_config(tmp_path, url)
        # a call that waited for even one POST would take 3 s or more
        overrides = {
            "webhook_timeout": 3.0,
            "webhook_attempts": 2,
            "webhook_backoff": 0.05,
            "webhook_workers": 16,
        }
        async with running_router(tmp_path, config, **overrides) as router:
            beijing = "01088881234"  # the default route of both plans
            plain = await call(router, dialled=PLAIN_NUMBER, uniqueid="p.1", caller_id=beijing)
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    call(router, dialled=CRM_NUMBER, uniqueid=f"c.{n}", caller_id=beijing)
                    for n in range(5)
                )
            )
            elapsed = time.monotonic() - started
            for result in results:
                assert result.error is None
                assert result.commands == plain.commands
                assert result.variables["HOTLINE_STATUS"] == "answered"
                assert (await finished_cdr(router, result.env["agi_uniqueid"])).outcome == (
                    "answered"
                )
            assert elapsed < 2.5  # 5 calls at once, while each event may take 3 s twice
            kept = UndeliveredEvents(router.settings.spool_dir)
            await eventually(lambda: router.webhooks.stats.undelivered == 15, timeout=30)
            await eventually(lambda: len(kept.read()) == 15)
        records = kept.read()
    assert {record["attempts"] for record in records} == {2}
    assert {record["number"] for record in records} == {CRM_NUMBER}


async def test_a_crm_refusing_the_signature_is_not_retried_and_a_missing_key_keeps_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with HttpReceiver("reject") as crm:
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config, webhook_backoff=0.05) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="rej.1")
            await eventually(lambda: router.webhooks.stats.undelivered == 3)
            monkeypatch.delenv(KEY_ENV)
            await call(router, dialled=CRM_NUMBER, uniqueid="nokey.1")
            await eventually(lambda: router.webhooks.stats.undelivered == 6)
        assert len(crm.received) == 3  # one POST each: a 401 will not fix itself
        errors = {r["id"]: r["error"] for r in UndeliveredEvents(router.settings.spool_dir).read()}
    assert errors["rej.1/end"] == "HTTP 401"
    assert errors["nokey.1/arrival"] == f"environment variable {KEY_ENV} (the key) is not set"


async def test_a_full_queue_keeps_events_at_once_and_calls_go_on(tmp_path: Path) -> None:
    async with HttpReceiver("silent") as crm:
        config = crm_config(tmp_path, crm.url)
        overrides = {"webhook_queue": 10, "webhook_workers": 1, "webhook_timeout": 5}
        async with running_router(tmp_path, config, **overrides) as router:
            results = [
                await call(router, dialled=CRM_NUMBER, uniqueid=f"full.{n}") for n in range(6)
            ]
            assert all(r.variables["HOTLINE_STATUS"] == "answered" for r in results)
            # 18 events: one POST hangs, 10 wait in the queue, 7 are kept at once
            await eventually(lambda: router.webhooks.stats.undelivered == 7)
            assert router.webhooks.queue_depth == 10
        # stopping keeps what was queued or in flight: nothing accepted is lost
        assert len(UndeliveredEvents(router.settings.spool_dir).read()) == 18


async def test_replay_sends_the_kept_events_to_the_crm_once_it_is_back(tmp_path: Path) -> None:
    down = HttpReceiver.refusing()
    config = crm_config(tmp_path, down)
    overrides = {"webhook_attempts": 1}
    async with running_router(tmp_path, config, **overrides) as router:
        await call(router, dialled=CRM_NUMBER, uniqueid="rep.1")
        await eventually(lambda: router.webhooks.stats.undelivered == 3)
    run_config = tmp_path / "config"
    kept = UndeliveredEvents(router.settings.spool_dir)
    async with HttpReceiver("ok") as crm:
        plan = run_config / "plans" / f"{CRM_NUMBER}.yaml"
        plan.write_text(plan.read_text(encoding="utf-8").replace(down, crm.url), "utf-8")
        (run_config / "router.yaml").write_text(
            (run_config / "router.yaml").read_text(encoding="utf-8")
            + f"spool_dir: {router.settings.spool_dir}\n",
            encoding="utf-8",
        )
        status = await asyncio.to_thread(main, ["webhooks", "replay", "--config", str(run_config)])
    assert status == 0
    assert sorted(verified(r)["id"] for r in crm.received) == [
        "rep.1/answer",
        "rep.1/arrival",
        "rep.1/end",
    ]
    assert kept.read() == []


async def test_replay_keeps_what_still_fails_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = crm_config(tmp_path, HttpReceiver.refusing())
    async with running_router(tmp_path, config, webhook_attempts=1) as router:
        await call(router, dialled=CRM_NUMBER, uniqueid="still.1")
        await eventually(lambda: router.webhooks.stats.undelivered == 3)
    run_config = tmp_path / "config"
    with (run_config / "router.yaml").open("a", encoding="utf-8") as file:
        file.write(f"spool_dir: {router.settings.spool_dir}\n")
    status = await asyncio.to_thread(main, ["webhooks", "replay", "--config", str(run_config)])
    assert status == 1
    assert "delivered 0, still undelivered 3" in capsys.readouterr().out
    records = UndeliveredEvents(router.settings.spool_dir).read()
    assert {r["attempts"] for r in records} == {2}


async def test_no_events_before_the_account_switches_screen_pop_on(tmp_path: Path) -> None:
    async with HttpReceiver("ok") as crm:
        config = crm_config(tmp_path, crm.url)
        text = (config / "tariffs.yaml").read_text(encoding="utf-8")
        priced = text.replace("features:\n", "features:\n  screen_pop: 50.00\n", 1)
        (config / "tariffs.yaml").write_text(priced, encoding="utf-8")
        with (config / "tariffs.yaml").open("a", encoding="utf-8") as tariffs:
            tariffs.write(
                f'  "{CRM_NUMBER}":\n    package: e2e-regional\n    prepaid: false\n'
                "    features: {screen_pop: 2026-12-01}\n"
            )
        async with running_router(tmp_path, config) as router:
            result = await call(router, dialled=CRM_NUMBER, uniqueid="off.1")
            await finished_cdr(router, "off.1")
    assert result.variables["HOTLINE_STATUS"] == "answered"
    assert crm.received == []


async def test_a_crm_that_fails_once_gets_the_event_again_after_the_backoff(
    tmp_path: Path,
) -> None:
    async with HttpReceiver(["error", "error", "ok"]) as crm:
        config = crm_config(tmp_path, crm.url)
        async with running_router(tmp_path, config, webhook_backoff=0.2) as router:
            started = time.monotonic()
            await call(router, dialled=CRM_NUMBER, uniqueid="again.1")
            await eventually(lambda: router.webhooks.stats.delivered == 3)
            stats = router.webhooks.stats
    assert (stats.retried, stats.undelivered) == (2, 0)
    ids = [request.headers["x-hotline400-id"] for request in crm.received]
    assert sorted(set(ids)) == ["again.1/answer", "again.1/arrival", "again.1/end"]
    retried = [r for r in crm.received if ids.count(r.headers["x-hotline400-id"]) > 1]
    assert retried and retried[-1].at - started >= 0.2  # not before the backoff


async def test_a_crms_credentials_and_token_never_reach_the_log(tmp_path: Path) -> None:
    """httpx would log every request with its whole URL; the router's own warning shows the
    URL with its password and query hidden."""
    stream = io.StringIO()
    handler = configure_logging("logfmt", stream=stream)
    try:
        async with HttpReceiver("ok") as crm:
            delivered = crm.url.replace("//", "//crmuser:CRMPASSWORD@") + "?token=TOKENSECRET"
            config = crm_config(tmp_path / "ok", delivered)
            async with running_router(tmp_path / "ok", config) as router:
                await call(router, dialled=CRM_NUMBER, uniqueid="quiet.1")
                await eventually(lambda: len(crm.received) == 3)
        refused = HttpReceiver.refusing().replace("//", "//crmuser:CRMPASSWORD@") + "?token=X1"
        config = crm_config(tmp_path / "refused", refused)
        async with running_router(tmp_path / "refused", config, webhook_attempts=1) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="quiet.2")
            await eventually(lambda: router.webhooks.stats.undelivered == 3)
    finally:
        logging.getLogger().removeHandler(handler)
    logged = stream.getvalue()
    assert "not delivered after 1 attempt(s)" in logged
    assert "crmuser:***@127.0.0.1" in logged and "/events?***" in logged
    for secret in ("CRMPASSWORD", "TOKENSECRET", "X1"):
        assert secret not in logged


async def test_a_caller_leaving_in_the_menu_still_reaches_the_crm(tmp_path: Path) -> None:
    """The caller hung up before the menu chose a route: the CRM still hears the call
    arrive (with the rule that led to the menu) and end, its record complete."""
    async with HttpReceiver("ok") as crm:
        config = crm_config(tmp_path, crm.url)
        (config / "plans" / f"{CRM_NUMBER}.yaml").write_text(
            f"""number: "{CRM_NUMBER}"
name: A subscriber with a CRM and a menu
crm: {{url: "{crm.url}", secret_env: {KEY_ENV}}}
menus:
  main:
    prompt: acme/main-menu
    options:
      1: {{target: "13800000011"}}
    default: {{target: "13800000012"}}
default: {{menu: main}}
""",
            encoding="utf-8",
        )
        async with running_router(tmp_path, config) as router:
            result = await call(
                router, dialled=CRM_NUMBER, uniqueid="menu.1", hangup=CallerHangup.at_prompt(1)
            )
            await eventually(lambda: len(crm.received) == 2)
    assert result.variables["HOTLINE_STATUS"] == "noanswer"
    events = {body["event"]: body for body in map(verified, crm.received)}
    assert events["call.arrived"]["rule"] == "default"
    ended = events["call.ended"]["cdr"]
    assert (ended["outcome"], ended["menu_path"], ended["legs"]) == ("noanswer", "main", [])


async def test_a_caller_refused_for_guessing_the_pin_still_reaches_the_crm(
    tmp_path: Path,
) -> None:
    pin = (E2E_CONFIG / "plans" / "4000000006.yaml").read_text(encoding="utf-8")
    pin = pin.replace('number: "4000000006"', f'number: "{CRM_NUMBER}"')
    async with HttpReceiver("ok") as crm:
        config = crm_config(tmp_path, crm.url)
        (config / "plans" / f"{CRM_NUMBER}.yaml").write_text(
            pin + f'crm: {{url: "{crm.url}", secret_env: {KEY_ENV}, events: [arrival, end]}}\n',
            encoding="utf-8",
        )
        guard = PinGuardSettings(max_failed_calls=1, window=600, block=300)
        async with running_router(tmp_path, config, pin_guard=guard) as router:
            await call(router, dialled=CRM_NUMBER, uniqueid="guess.1", dtmf=("1111#",) * 3)
            refused = await call(router, dialled=CRM_NUMBER, uniqueid="guess.2")
            await eventually(lambda: len(crm.received) == 4)
    assert refused.variables["HOTLINE_STATUS"] == "blocked"
    events = {body["id"]: body for body in map(verified, crm.received)}
    assert events["guess.2/arrival"]["rule"] == "default"
    assert events["guess.2/end"]["cdr"]["outcome"] == "blocked"


async def test_the_metrics_show_the_events_kept_until_a_replay_takes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hotline400CrmUndelivered fires while the spool holds events, however long ago they
    were given up, and clears once `hotline400 webhooks replay` delivered them."""
    monkeypatch.setattr(undelivered, "RECOUNT_EVERY_S", 0.1)
    down = HttpReceiver.refusing()
    async with running_router(tmp_path, crm_config(tmp_path, down), webhook_attempts=1) as router:
        await call(router, dialled=CRM_NUMBER, uniqueid="gauge.1")
        await eventually(lambda: router.webhooks.stats.undelivered == 3)
        await eventually(lambda: router.webhooks.undelivered.path.exists())
        await asyncio.sleep(0.6)  # written (KEEP_EVERY_S)
        assert sample(await scrape(router), "hotline400_webhook_events_kept") == 3
        UndeliveredEvents(router.settings.spool_dir).settle({"gauge.1/arrival"}, {})
        await asyncio.sleep(0.2)
        assert sample(await scrape(router), "hotline400_webhook_events_kept") == 2


async def test_a_spool_that_cannot_be_written_is_counted_for_its_alert(tmp_path: Path) -> None:
    """Here a directory stands where the file goes (the tests run as root, for whom a
    read-only directory is no obstacle); a full disk fails the same write."""
    (tmp_path / "var" / "spool" / "webhooks.undelivered").mkdir(parents=True)
    config = crm_config(tmp_path, HttpReceiver.refusing())
    async with running_router(tmp_path, config, webhook_attempts=1) as router:
        await call(router, dialled=CRM_NUMBER, uniqueid="nospool.1")
        await eventually(lambda: router.webhooks.undelivered.write_failures == 1)
        text = await scrape(router)
    assert sample(text, 'hotline400_spool_write_failures_total{spool="webhooks"}') == 1
    assert sample(text, 'hotline400_spool_write_failures_total{spool="sms"}') == 0
