"""Text messages to the subscriber, end to end: a missed call (who called, when, from where)
and the low-balance warning go through the SMS sender, the HTTP gateway adapter to a real
HTTP receiver or the log-only default, at most `sms_per_number` of a kind per mobile and window."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
from pathlib import Path

import pytest

from dialplan.errors import ConfigError
from router.notifications.sms import SMS_UNDELIVERED_FILE
from router.notifications.undelivered import UndeliveredEvents
from router.simulation.asterisk_agi import CallerHangup, Outcome
from tests.conftest import (
    E2E_CONFIG,
    HttpReceiver,
    call,
    eventually,
    finished_cdr,
    plan_from,
    running_router,
)
from tests.router.money.test_router_accounting import pay, settled
from tests.router.monitoring.test_router_operability import scrape

SUBSCRIBER = "4000000030"
MOBILE = "13905310001"
TOKEN_ENV = "HOTLINE400_TEST_SMS_TOKEN"


def sms_config(tmp_path: Path, target: str = "13800000021", notify: str = "") -> Path:
    """The e2e configuration plus a subscriber whose plan asks for text messages."""
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    (config / "plans" / f"{SUBSCRIBER}.yaml").write_text(
        f"""number: "{SUBSCRIBER}"
name: A subscriber told by SMS
notifications: {{sms_to: ["{MOBILE}"]{notify}}}
default: {{target: "{target}"}}
""",
        encoding="utf-8",
    )
    return config


def texts(gateway: HttpReceiver) -> list[dict]:
    return [json.loads(request.body) for request in gateway.received]


async def test_a_missed_call_tells_the_subscriber_who_called_when_and_from_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "gateway-token")
    async with HttpReceiver("ok") as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_token_env": TOKEN_ENV}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            result = await call(router, dialled=SUBSCRIBER, uniqueid="miss.1")
            assert result.variables["HOTLINE_STATUS"] == "busy"
            await eventually(lambda: len(gateway.received) == 1)
    [message] = texts(gateway)
    assert message["to"] == MOBILE
    assert message["text"] == (
        f"未接来电：053188889999（山东济南）于 11-23 10:00 拨打 {SUBSCRIBER}，请及时回电。"
    )
    assert gateway.received[0].headers["authorization"] == "Bearer gateway-token"


async def test_a_caller_giving_up_while_ringing_is_a_missed_call_and_an_answer_is_not(
    tmp_path: Path,
) -> None:
    async with HttpReceiver("ok") as gateway:
        config = sms_config(tmp_path, target="13800000031")  # rings forever
        async with running_router(tmp_path, config, sms_gateway=gateway.url) as router:
            gave_up = CallerHangup.during_dial(after_s=5)
            await call(router, dialled=SUBSCRIBER, uniqueid="gone.1", hangup=gave_up)
            assert (await finished_cdr(router, "gone.1")).outcome == "noanswer"
            await eventually(lambda: len(gateway.received) == 1)
            await call(router, dialled="4000000001", uniqueid="answered.1")  # no notifications
    assert len(gateway.received) == 1


GATED = "4000000031"
PIN_2468 = (
    "scrypt$14$8$1$000102030405060708090a0b0c0d0e0f"
    "$cea4f1390f7e25d3e56e52eacd3a602cc3365139a2960ffded25685db19eb9ff"
)


def gated_config(tmp_path: Path) -> Path:
    """A subscriber told of missed calls whose callers pass a menu, a PIN (2468) and the
    recording notice before its one destination (busy) is dialled."""
    config = sms_config(tmp_path)
    (config / "plans" / f"{GATED}.yaml").write_text(
        f"""number: "{GATED}"
name: A subscriber behind a menu, a PIN and a recording notice
notifications: {{sms_to: ["{MOBILE}"]}}
blacklist: {{numbers: ["13905319999"]}}
pin:
  hash: "{PIN_2468}"
  attempts: 2
  prompt: acme/enter-pin
  retry_prompt: acme/pin-wrong
  failed_prompt: acme/pin-failed
recording: {{notice: acme/recorded}}
menus:
  main:
    prompt: acme/main-menu
    options:
      1: {{target: "13800000021"}}
    default: {{target: "13800000021"}}
default: {{menu: main}}
""",
        encoding="utf-8",
    )
    return config


async def test_callers_who_never_reached_the_subscribers_lines_are_no_missed_calls(
    tmp_path: Path,
) -> None:
    """A missed call is a caller the subscriber's lines were asked to take and who was not
    answered. One who gave up in the menu, at the PIN prompt or during the recording
    notice, failed the PIN or was refused by the plan never rang anywhere: no text."""
    async with HttpReceiver("ok") as gateway:
        overrides = {"sms_gateway": gateway.url}
        async with running_router(tmp_path, gated_config(tmp_path), **overrides) as router:
            gave_up = {
                "in.menu": ({}, CallerHangup.at_prompt(1)),
                "at.pin": ({"dtmf": ("1",)}, CallerHangup.at_prompt(2)),
                "at.notice": ({"dtmf": ("1", "2468#")}, CallerHangup.during_playback(1)),
            }
            for n, (uniqueid, (keys, hangup)) in enumerate(gave_up.items()):
                caller = f"1390531000{n + 2}"
                await call(
                    router,
                    dialled=GATED,
                    uniqueid=uniqueid,
                    caller_id=caller,
                    hangup=hangup,
                    **keys,
                )
                assert (await finished_cdr(router, uniqueid)).outcome == "noanswer"
            await call(router, dialled=GATED, uniqueid="wrong.pin", dtmf=("1", "1111#", "1111#"))
            assert (await finished_cdr(router, "wrong.pin")).outcome == "pin_failed"
            await call(router, dialled=GATED, uniqueid="listed", caller_id="13905319999")
            assert (await finished_cdr(router, "listed")).outcome == "blocked"
            rang = await call(
                router, dialled=GATED, uniqueid="rang", caller_id="13905310009", dtmf=("1", "2468#")
            )
            assert rang.variables["HOTLINE_STATUS"] == "busy"
            await eventually(lambda: router.sms.counts["missed_call", "sent"] >= 1)
    assert [message["text"][:16] for message in texts(gateway)] == ["未接来电：13905310009"]


async def test_a_caller_whose_every_line_is_down_is_a_missed_call_told_why(
    tmp_path: Path,
) -> None:
    """Every destination the call could take is marked down: the router refuses it
    (no_route, rejected), though the caller wanted the subscriber and nobody could answer.
    The subscriber, whose lines are out, hears of it, the reason in the text."""
    async with HttpReceiver("ok") as gateway:
        config = sms_config(tmp_path)
        plan = config / "plans" / f"{SUBSCRIBER}.yaml"
        text = plan.read_text(encoding="utf-8")
        down = '{target: {number: "13800000021", down: true}}'
        plan.write_text(text.replace('{target: "13800000021"}', down), encoding="utf-8")
        async with running_router(tmp_path, config, sms_gateway=gateway.url) as router:
            result = await call(router, dialled=SUBSCRIBER, uniqueid="down.1")
            refused = await finished_cdr(router, "down.1")
            await eventually(lambda: len(gateway.received) == 1)
    assert result.variables["HOTLINE_STATUS"] == "rejected"
    assert refused.note.startswith("no_route: ")
    [message] = texts(gateway)
    assert message["to"] == MOBILE
    assert message["text"] == (
        f"未接来电：053188889999（山东济南）于 11-23 10:00 拨打 {SUBSCRIBER}，"
        "接听号码均已停用，请及时回电。"
    )


async def test_messages_to_one_mobile_are_limited_per_window(tmp_path: Path) -> None:
    async with HttpReceiver("ok") as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_per_number": 2}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            for n in range(4):
                await call(router, dialled=SUBSCRIBER, uniqueid=f"burst.{n}")
            await eventually(lambda: router.sms.counts["missed_call", "sent"] == 2)
            assert router.sms.counts["missed_call", "rate_limited"] == 2
    assert len(gateway.received) == 2


def kept_messages(tmp_path: Path) -> list[dict]:
    return UndeliveredEvents(tmp_path / "var" / "spool", SMS_UNDELIVERED_FILE).read()


QUICK_RETRIES = {"sms_backoff": 0.05, "sms_retry_for": 0.3}


async def test_a_gateway_that_fails_or_never_answers_does_not_touch_the_call(
    tmp_path: Path,
) -> None:
    async with HttpReceiver("silent") as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_timeout": 0.3}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            result = await call(router, dialled=SUBSCRIBER, uniqueid="gw.1")
            assert result.variables["HOTLINE_STATUS"] == "busy"
            await eventually(lambda: router.sms.counts["missed_call", "kept"] == 1)


async def test_a_gateway_error_is_tried_again_and_the_message_reaches_the_phone(
    tmp_path: Path,
) -> None:
    """A 5xx is the gateway's passing trouble: the message goes again after the backoff."""
    async with HttpReceiver(["error", "error", "ok"]) as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_backoff": 0.05}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            await call(router, dialled=SUBSCRIBER, uniqueid="flaky.1")
            await eventually(lambda: router.sms.counts["missed_call", "sent"] == 1)
            assert router.sms.retries == 2
    assert len(gateway.received) == 3
    assert kept_messages(tmp_path) == []


async def test_a_gateway_down_past_the_retry_time_keeps_the_message_for_replay(
    tmp_path: Path,
) -> None:
    """Connections refused for all of sms_retry_for: the message is in the spool, with what
    `hotline400 sms replay` needs, and known not to have been sent."""
    overrides = {"sms_gateway": HttpReceiver.refusing(), **QUICK_RETRIES}
    async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
        await call(router, dialled=SUBSCRIBER, uniqueid="down.1")
        await eventually(lambda: router.sms.counts["missed_call", "kept"] == 1)
        assert router.sms.retries >= 2
    [kept] = kept_messages(tmp_path)
    assert kept["kind"] == "missed_call" and kept["number"] == SUBSCRIBER
    assert kept["to"] == MOBILE and kept["text"].startswith("未接来电：053188889999")
    assert kept["maybe_sent"] is False and kept["attempts"] >= 3
    assert "ConnectError" in kept["error"]


async def test_a_gateway_not_accepting_connections_in_time_is_tried_again(
    tmp_path: Path,
) -> None:
    """No connection within sms_timeout (a full accept queue drops the SYN): the request
    never went out, so sending again cannot text the subscriber twice."""
    with socket.socket() as stalled:
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(0)
        address = stalled.getsockname()
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:  # the accept queue full: further SYNs go unanswered
            filler.setblocking(False)
            filler.connect_ex(address)
        try:
            url = f"http://127.0.0.1:{address[1]}/sms"
            # Retried for several timeouts: on a loaded machine one attempt alone can take
            # longer than QUICK_RETRIES' window.
            overrides = {
                "sms_gateway": url,
                "sms_timeout": 0.2,
                **QUICK_RETRIES,
                "sms_retry_for": 2.0,
            }
            async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
                await call(router, dialled=SUBSCRIBER, uniqueid="stalled.1")
                await eventually(lambda: router.sms.counts["missed_call", "kept"] == 1)
                assert router.sms.retries >= 1
        finally:
            for filler in fillers:
                filler.close()
    [kept] = kept_messages(tmp_path)
    assert kept["maybe_sent"] is False and kept["error"] == "no connection within 0.2 s"


async def test_a_message_the_gateway_refused_does_not_use_up_the_mobiles_limit(
    tmp_path: Path,
) -> None:
    """The limit counts messages that may have reached the phone: one the gateway refused
    for good (a 401 is not tried again) never did, so the next missed call is still told."""
    async with HttpReceiver(["reject", "ok"]) as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_per_number": 1}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            await call(router, dialled=SUBSCRIBER, uniqueid="down.1")
            await eventually(lambda: router.sms.counts["missed_call", "kept"] == 1)
            await call(router, dialled=SUBSCRIBER, uniqueid="back.2")
            await eventually(lambda: router.sms.counts["missed_call", "sent"] == 1)
            assert router.sms.counts["missed_call", "rate_limited"] == 0
            assert router.sms.retries == 0
    assert len(gateway.received) == 2
    assert [kept["error"] for kept in kept_messages(tmp_path)] == ["HTTP 401"]


async def test_a_message_without_an_answer_in_time_is_kept_once_not_sent_again(
    tmp_path: Path,
) -> None:
    """The request went out and no answer came: the gateway may have sent it. The router
    does not send it again, counts it in the limit, and keeps it marked maybe_sent."""
    async with HttpReceiver("silent") as gateway:
        overrides = {
            "sms_gateway": gateway.url,
            "sms_per_number": 1,
            "sms_timeout": 0.3,
            **QUICK_RETRIES,
        }
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            await call(router, dialled=SUBSCRIBER, uniqueid="slow.1")
            await eventually(lambda: router.sms.counts["missed_call", "kept"] == 1)
            await call(router, dialled=SUBSCRIBER, uniqueid="slow.2")
            await eventually(lambda: router.sms.counts["missed_call", "rate_limited"] == 1)
            await asyncio.sleep(0.5)  # past sms_retry_for: no retry went out
    assert len(gateway.received) == 1
    [kept] = kept_messages(tmp_path)
    assert kept["maybe_sent"] is True and kept["attempts"] == 1


async def test_a_message_waiting_for_its_retry_at_shutdown_is_kept(tmp_path: Path) -> None:
    """At once: no send is under way to let finish (sms_timeout, 5 s, is not waited out)."""
    overrides = {"sms_gateway": HttpReceiver.refusing(), "sms_backoff": 30.0}
    async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
        await call(router, dialled=SUBSCRIBER, uniqueid="stop.1")
        await eventually(lambda: router.sms.retries == 1)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2.0
    [kept] = kept_messages(tmp_path)
    assert kept["maybe_sent"] is False and kept["attempts"] == 1


async def test_a_message_the_spool_cannot_take_is_counted_lost(tmp_path: Path) -> None:
    """A spool file that cannot be written (here a directory in its place, as the tests run
    as root): the message is lost, and the metrics say so, by kind and by spool."""
    (tmp_path / "var" / "spool" / SMS_UNDELIVERED_FILE).mkdir(parents=True)
    overrides = {"sms_gateway": HttpReceiver.refusing(), **QUICK_RETRIES}
    async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
        await call(router, dialled=SUBSCRIBER, uniqueid="full.1")
        await eventually(lambda: router.sms.counts["missed_call", "lost"] == 1)
        assert router.sms.counts["missed_call", "kept"] == 0
        assert router.sms.kept.write_failures == 1
        scraped = await scrape(router)
    assert 'hotline400_spool_write_failures_total{spool="sms"} 1.0' in scraped
    assert 'hotline400_sms_messages_total{kind="missed_call",result="lost"} 1.0' in scraped


async def test_a_gateway_answering_2xx_with_an_endless_body_sent_the_message(
    tmp_path: Path,
) -> None:
    """Its status is the gateway's answer; of its body the router reads a little, not all."""
    async with HttpReceiver("endless") as gateway:
        overrides = {"sms_gateway": gateway.url, "sms_timeout": 3.0}
        async with running_router(tmp_path, sms_config(tmp_path), **overrides) as router:
            await call(router, dialled=SUBSCRIBER, uniqueid="endless.1")
            await eventually(lambda: router.sms.counts["missed_call", "sent"] == 1, timeout=2.5)
            assert router.sms.counts["missed_call", "failed"] == 0
    assert gateway.streamed < 16 * 2**20


async def test_without_a_gateway_messages_are_logged_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotline400.sms")
    async with running_router(tmp_path, sms_config(tmp_path)) as router:
        await call(router, dialled=SUBSCRIBER, uniqueid="log.1")
        await eventually(lambda: router.sms.counts["missed_call", "sent"] == 1)
    [record] = [r for r in caplog.records if r.name == "hotline400.sms"]
    assert MOBILE in record.getMessage() and "log only" in record.getMessage()


async def test_the_low_balance_warning_is_a_text_message_too(tmp_path: Path) -> None:
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / "4000000008.yaml"
    plan.write_text(
        plan.read_text(encoding="utf-8") + f'notifications: {{sms_to: ["{MOBILE}"]}}\n',
        encoding="utf-8",
    )
    async with (
        HttpReceiver("ok") as gateway,
        running_router(tmp_path, config, sms_gateway=gateway.url) as router,
    ):
        await pay(router, "4000000008", "5.50", "receipt-sms")
        await call(router, dialled="4000000008", uniqueid="low.1")
        await settled(router)
        await eventually(lambda: len(gateway.received) == 1)
    assert texts(gateway) == [
        {
            "to": MOBILE,
            "text": "4000000008 预付余额 4.90 元，已低于提醒值 5.00 元，请及时充值。",
        }
    ]


async def test_missed_calls_over_a_mobiles_limit_do_not_hold_back_the_low_balance_warning(
    tmp_path: Path,
) -> None:
    """The per-mobile limit stops a burst of missed calls flooding a phone; the warning that
    the number is about to stop connecting calls comes once, and must get through."""
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / "4000000008.yaml"
    plan.write_text(
        plan.read_text(encoding="utf-8") + f'notifications: {{sms_to: ["{MOBILE}"]}}\n',
        encoding="utf-8",
    )
    async with (
        HttpReceiver("ok") as gateway,
        running_router(tmp_path, config, sms_gateway=gateway.url, sms_per_number=1) as router,
    ):
        await pay(router, "4000000008", "5.50", "receipt-sms-limit")
        busy = {"13800000051": Outcome.busy()}
        await call(router, dialled="4000000008", uniqueid="missed.1", destinations=busy)
        await eventually(lambda: len(gateway.received) == 1)
        await call(router, dialled="4000000008", uniqueid="low.2")
        await settled(router)
        await eventually(lambda: len(gateway.received) == 2)
        assert router.sms.counts["low_balance", "rate_limited"] == 0
    assert [message["text"][:4] for message in texts(gateway)] == ["未接来电", "4000"]


async def test_notifications_go_to_mobiles_only() -> None:
    with pytest.raises(ConfigError, match="is not a mobile number"):
        plan_from('notifications: {sms_to: ["0531-8888 6666"]}\ndefault: {target: "13800000011"}')


def test_a_mobile_listed_twice_is_refused_rather_than_texted_twice() -> None:
    """Two spellings of one mobile would have every missed call texted to it twice; each
    problem is named at the line of its number."""
    with pytest.raises(ConfigError) as caught:
        plan_from(
            'notifications:\n  sms_to:\n    - "13905310001"\n    - "0531 8888 6666"\n'
            '    - "+86 139 0531 0001"\ndefault: {target: "13800000011"}'
        )
    assert [str(problem) for problem in caught.value.problems] == [
        "4006001234.yaml:6 notifications.sms_to[1]: '053188886666' is not a mobile number"
    ]
    with pytest.raises(ConfigError) as caught:
        plan_from(
            'notifications:\n  sms_to:\n    - "13905310001"\n    - "+86 139 0531 0001"\n'
            'default: {target: "13800000011"}'
        )
    assert [str(problem) for problem in caught.value.problems] == [
        "4006001234.yaml:6 notifications.sms_to[1]: '13905310001' is listed twice"
    ]
