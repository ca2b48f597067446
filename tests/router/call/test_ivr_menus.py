"""IVR menus over FastAGI: the router answers only to play a menu, reads one key a prompt
(`GET DATA prompt timeout 1`, transcripts fact 18), switches the prompt language where the
plan or an option says (fact 19), and puts the menu path and the keys on the CDR.

Each test runs the real daemon with the Asterisk simulator and asserts the exact AGI
commands. The plan (tests/e2e_config/plans/4000000101.yaml) speaks Chinese, its main menu
sends 1 to 13800000011 and 2 to an English menu; no key or a wrong one plays the menu once
more, then its default dials 13800000012.
"""

import asyncio
import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import CallerHangup, Outcome
from router.simulation.asterisk_ami import MANAGER_CONF, AmiSimulator, accounts_from_manager_conf
from router.storage.cdr import Outcome as CallOutcome
from tests.conftest import (
    E2E_CONFIG,
    SimulatedClock,
    call,
    eventually,
    finished_cdr,
    running_router,
)
from tests.router.call.test_router_calls import dial_lines, prompted_dial_lines, status_lines

ACCOUNTS = accounts_from_manager_conf(MANAGER_CONF.read_text(encoding="utf-8"))
MENU_LINE = "4000000101"
ANSWER_IN_CHINESE = ["ANSWER", 'EXEC Set "CHANNEL(language)=zh"']
MAIN_MENU = "GET DATA acme/main-menu 3000 1"

SPEEDUP = 4.0
"""How much faster than real time the calls that time the menus, the ring and the talk run
(the simulator sleeping 1/SPEEDUP of each virtual second, the router's clock running
SPEEDUP times fast). The router's clock also counts what the simulator's sleeps overshoot,
times SPEEDUP, which the channel's times do not: the 0.9 s of slack under each whole second
billed (a 5.9 s talk billed 5) is 225 ms of real lateness, which a loaded machine stays
within (at 10 times, 90 ms did not: a talk billed 4)."""


async def test_a_key_in_each_menu_reaches_its_destination_in_the_chosen_language(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=MENU_LINE, uniqueid="ivr.1", dtmf=("2", "1"))
        cdr = await finished_cdr(router, "ivr.1")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        'EXEC Set "CHANNEL(language)=en"',
        "GET DATA acme/english-menu 5000 1",
        *prompted_dial_lines("13800000013", result.env["agi_channel"]),
        *status_lines("answered", "13800000013", "default"),
    ]
    assert result.variables["CHANNEL(language)"] == "en"
    assert (cdr.outcome, cdr.menu_path, cdr.menu_digits, cdr.language) == (
        CallOutcome.ANSWERED,
        "main:2>english:1",
        "21",
        "en",
    )


async def test_a_repeat_key_with_a_language_plays_the_menu_again_in_it(tmp_path: Path) -> None:
    config = tmp_path / "e2e"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / f"{MENU_LINE}.yaml"
    text = plan.read_text(encoding="utf-8")
    english_repeat = text.replace("9: repeat", "9: {repeat: true, language: en}")
    assert english_repeat != text
    plan.write_text(english_repeat, encoding="utf-8")
    async with running_router(tmp_path, config=config) as router:
        result = await call(router, dialled=MENU_LINE, uniqueid="ivr.en", dtmf=("9", "1"))
        cdr = await finished_cdr(router, "ivr.en")
    assert result.commands[:5] == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        'EXEC Set "CHANNEL(language)=en"',
        MAIN_MENU,
    ]
    assert (cdr.menu_path, cdr.menu_digits, cdr.language) == ("main:1", "91", "en")


async def test_the_menus_and_the_ring_are_not_billed_as_talk(tmp_path: Path) -> None:
    """Answered for the menus, the channel's ANSWEREDTIME counts from that ANSWER (agi-more/
    a_answered: ANSWER, then a Dial of 3.5 s, gives ANSWEREDTIME_MS 4016): it holds the menus
    and the ring. Without an AMI link the Dial's `U()` hook of the shipped dialplan stamps the
    destination's answer on the caller's channel: only the talk after it is billed."""
    speedup = SPEEDUP
    desk = Outcome.answers(talk_s=5.9, ring_s=2.0)
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        result = await call(
            router,
            time_scale=1 / speedup,
            dialled=MENU_LINE,
            uniqueid="ivr.menus",
            dtmf=("2", "1"),
            sound_samples=16000,  # each prompt 2 s long
            destinations={"13800000013": desk},
        )
        cdr = await finished_cdr(router, "ivr.menus")
    (dial,) = result.dials
    menus_s = result.virtual_s - dial.ring_s - dial.talk_s
    assert menus_s >= 4.5  # ANSWER and the two menus' prompts
    assert cdr.outcome is CallOutcome.ANSWERED
    assert cdr.billable_seconds == 5  # the 5.9 s talk: not 7 with the ring, 12 with the menus
    (leg,) = cdr.legs
    assert (leg.ring_seconds, leg.talk_seconds) == (2, 5)


async def test_in_virtual_time_the_menus_and_the_ring_are_not_billed_either(
    tmp_path: Path,
) -> None:
    """With the simulator in virtual time (time scale 0, as `hotline400 callgen` runs by
    default) the menus take no time on the router's clock: the talk is what the channel
    tells, the same 5 s as when the call takes its real time."""
    desk = Outcome.answers(talk_s=5.9, ring_s=2.0)
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled=MENU_LINE,
            uniqueid="ivr.virtual",
            dtmf=("2", "1"),
            sound_samples=16000,
            destinations={"13800000013": desk},
        )
        cdr = await finished_cdr(router, "ivr.virtual")
    assert result.virtual_s >= 4.5 + 7.9  # the menus, the ring and the talk, virtually
    assert (cdr.outcome, cdr.billable_seconds) == (CallOutcome.ANSWERED, 5)
    assert [leg.talk_seconds for leg in cdr.legs] == [5]


async def test_without_the_answer_hook_or_an_ami_link_the_ring_is_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dialplan without the `[hotline400-answered]` subroutine and no AMI link: nothing
    tells when the destination answered. The menus are still taken off (on the router's
    clock), the ring counts as talk, and the log says why."""
    speedup = SPEEDUP
    desk = Outcome.answers(talk_s=5.9, ring_s=2.0)
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        await call(
            router,
            time_scale=1 / speedup,
            dialled=MENU_LINE,
            uniqueid="ivr.unhooked",
            dtmf=("2", "1"),
            sound_samples=16000,
            destinations={"13800000013": desk},
            answer_hook=False,
        )
        cdr = await finished_cdr(router, "ivr.unhooked")
    assert cdr.billable_seconds == 7  # 2 s ringing + 5.9 s talk, not 12 s with the menus
    assert "call ivr.unhooked: no answer stamp (Dial's U(hotline400-answered)" in caplog.text


async def test_without_the_answer_hook_the_ami_link_tells_the_ring_after_the_menus(
    tmp_path: Path,
) -> None:
    """A dialplan without the `[hotline400-answered]` subroutine leaves no answer stamp: the
    Dial's DialBegin and DialEnd ANSWER, stamped by Asterisk (timestampevents), say how long
    the destination rang, and the talk is what is left of the Dial."""
    speedup = SPEEDUP
    desk = Outcome.answers(talk_s=5.9, ring_s=2.0)
    asterisk = AmiSimulator(ACCOUNTS, timestamp_events=True)
    overrides = {"ami_host": "127.0.0.1", "ami_port": await asterisk.start()}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret

    def ringing_then_answered(number: str) -> Outcome:
        now = time.time()
        asterisk.channel_up("ivr.ami", "053188889999", MENU_LINE, at=now - 5)
        asterisk.answer_caller("ivr.ami", at=now - 5)  # answered for the menus
        asterisk.dial("ivr.ami", number, at=now)
        asterisk.answer("ivr.ami", at=now + desk.ring_s)
        return desk

    try:
        async with running_router(tmp_path, clock=SimulatedClock(speedup), **overrides) as router:
            await eventually(lambda: router.ami is not None and router.ami.connected)
            await call(
                router,
                time_scale=1 / speedup,
                dialled=MENU_LINE,
                uniqueid="ivr.ami",
                dtmf=("2", "1"),
                sound_samples=16000,
                destinations=ringing_then_answered,
                answer_hook=False,
            )
            cdr = await finished_cdr(router, "ivr.ami")
    finally:
        await asterisk.stop()
    assert cdr.billable_seconds == 5
    (leg,) = cdr.legs
    assert (leg.ring_seconds, leg.talk_seconds) == (2, 5)
    assert cdr.answered_at == leg.started_at + timedelta(seconds=2)


async def test_dial_stamps_a_busy_asterisk_sends_after_the_dial_returned_still_tell_the_ring(
    tmp_path: Path,
) -> None:
    """Without the answer hook, a busy Asterisk writes its manager events behind its calls:
    the second call's DialBegin and DialEnd ANSWER reach the router a moment after its Dial's
    result. The link has told stamped events before, so the router waits for them: the ring
    is not billed as talk."""
    speedup = SPEEDUP
    desk = Outcome.answers(talk_s=5.9, ring_s=2.0)
    asterisk = AmiSimulator(ACCOUNTS, timestamp_events=True)
    overrides = {"ami_host": "127.0.0.1", "ami_port": await asterisk.start()}
    overrides["ami_secret"] = ACCOUNTS["hotline400"].secret

    def destination(call_id: str, late_s: float) -> Callable[[str], Outcome]:
        def ringing_then_answered(number: str) -> Outcome:
            now = time.time()
            asterisk.channel_up(call_id, "053188889999", MENU_LINE, at=now - 5)
            asterisk.answer_caller(call_id, at=now - 5)  # answered for the menus

            def dial_events() -> None:
                asterisk.dial(call_id, number, at=now)
                asterisk.answer(call_id, at=now + desk.ring_s)

            asyncio.get_running_loop().call_later(late_s, dial_events)
            return desk

        return ringing_then_answered

    dial_s = (desk.ring_s + desk.talk_s) / speedup
    cdrs = []
    try:
        async with running_router(tmp_path, clock=SimulatedClock(speedup), **overrides) as router:
            await eventually(lambda: router.ami is not None and router.ami.connected)
            for call_id, late_s in (("ivr.on_time", 0.0), ("ivr.late", dial_s + 0.2)):
                await call(
                    router,
                    time_scale=1 / speedup,
                    dialled=MENU_LINE,
                    uniqueid=call_id,
                    dtmf=("2", "1"),
                    sound_samples=16000,
                    destinations=destination(call_id, late_s),
                    answer_hook=False,
                )
                cdrs.append(await finished_cdr(router, call_id))
    finally:
        await asterisk.stop()
    for cdr in cdrs:
        assert cdr.billable_seconds == 5, cdr.call_id
        (leg,) = cdr.legs
        assert (leg.ring_seconds, leg.talk_seconds) == (2, 5), cdr.call_id


async def test_a_wrong_key_then_silence_spend_the_retries_and_take_the_default(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=MENU_LINE, uniqueid="ivr.2", dtmf=("7", None))
        cdr = await finished_cdr(router, "ivr.2")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        'STREAM FILE acme/invalid-key ""',
        MAIN_MENU,
        *prompted_dial_lines("13800000012", result.env["agi_channel"]),
        *status_lines("answered", "13800000012", "default"),
    ]
    assert (cdr.menu_path, cdr.menu_digits, cdr.language) == ("main:default", "7", "zh")


async def test_repeat_plays_the_menu_again_without_spending_a_retry(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=MENU_LINE, uniqueid="ivr.3", dtmf=("9", "9", "1"))
        cdr = await finished_cdr(router, "ivr.3")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        MAIN_MENU,
        MAIN_MENU,
        *prompted_dial_lines("13800000011", result.env["agi_channel"]),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr.menu_path, cdr.menu_digits) == ("main:1", "991")


async def test_a_caller_hanging_up_in_a_menu_leaves_a_complete_cdr(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router, dialled=MENU_LINE, uniqueid="ivr.4", hangup=CallerHangup.at_prompt(1)
        )
        cdr = await finished_cdr(router, "ivr.4")
    # GET DATA answers -1 for a hang-up and for a missing prompt alike (fact 20): CHANNEL
    # STATUS, answered by HANGUP and 511, tells which; nothing is dialled.
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        "CHANNEL STATUS",
        *status_lines("noanswer", "", "default"),
    ]
    assert result.replies[3] == ["511 Command Not Permitted on a dead channel or intercept routine"]
    assert (cdr.outcome, cdr.menu_path, cdr.menu_digits) == (CallOutcome.NOANSWER, "main", "")
    assert cdr.note == "caller hung up in menu 'main'"
    assert cdr.ended_at is not None and cdr.legs == ()


async def test_a_caller_hanging_up_during_the_invalid_key_prompt_is_gone_from_the_menu(
    tmp_path: Path,
) -> None:
    """STREAM FILE answers -1 (the router reads no more into it); the next prompt's reply
    comes after HANGUP, as 511: the call ends unconnected, the wrong key on its CDR."""
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled=MENU_LINE,
            uniqueid="ivr.gone",
            dtmf=("7",),
            hangup=CallerHangup.during_sound(1),
        )
        cdr = await finished_cdr(router, "ivr.gone")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        'STREAM FILE acme/invalid-key ""',
        MAIN_MENU,
        *status_lines("noanswer", "", "default"),
    ]
    assert (cdr.outcome, cdr.menu_path, cdr.menu_digits) == (CallOutcome.NOANSWER, "main", "7")
    assert cdr.note == "caller hung up in menu 'main'" and cdr.legs == ()


SWITCHING_LINE = "4000000111"
SWITCHING_PLAN = f"""\
number: "{SWITCHING_LINE}"
name: option 1 switches the language
language: zh
menus:
  main:
    prompt: acme/main-menu
    options:
      1: {{target: "13800000011", language: en}}
    default: {{target: "13800000012"}}
default: {{menu: main}}
"""


@pytest.mark.parametrize("recording", ["", "recording: {notice: hotline400/recording-notice}\n"])
async def test_a_caller_hanging_up_after_the_key_is_neither_recorded_nor_dialled(
    tmp_path: Path, recording: str
) -> None:
    """The key chose a route and the caller left: Asterisk tells so before the reply to the
    language switch. Nothing was dialled, so the call ends as a caller gone (noanswer),
    never as busy, with no notice, recording or Dial sent to the dead channel."""
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / f"{SWITCHING_LINE}.yaml"
    plan.write_text(SWITCHING_PLAN + recording, encoding="utf-8")
    async with running_router(tmp_path, config) as router:
        result = await call(
            router,
            dialled=SWITCHING_LINE,
            uniqueid="ivr.8",
            dtmf=("1",),
            hangup=CallerHangup.after_keying_in(1),
        )
        cdr = await finished_cdr(router, "ivr.8")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU.replace("3000", "5000"),
        'EXEC Set "CHANNEL(language)=en"',
        *status_lines("noanswer", "", "default"),
    ]
    assert result.dials == [] and result.hung_up_by == "caller"
    assert (cdr.outcome, cdr.note, cdr.legs) == (
        CallOutcome.NOANSWER,
        "caller hung up before dialling",
        (),
    )
    assert (cdr.menu_path, cdr.menu_digits) == ("main:1", "1")


async def test_a_menu_whose_prompt_is_missing_takes_its_default_at_once(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled=MENU_LINE,
            uniqueid="ivr.5",
            missing_sounds=frozenset({"zh/acme/main-menu"}),
        )
        cdr = await finished_cdr(router, "ivr.5")
    assert result.commands == [
        *ANSWER_IN_CHINESE,
        MAIN_MENU,
        "CHANNEL STATUS",  # 200 result=6: the caller is there, the prompt is not
        *prompted_dial_lines("13800000012", result.env["agi_channel"]),
        *status_lines("answered", "13800000012", "default"),
    ]
    assert cdr.menu_path == "main:default"


async def test_a_call_without_a_menu_is_never_answered_by_the_router(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000001", uniqueid="ivr.6")
        cdr = await finished_cdr(router, "ivr.6")
    assert not result.answered
    assert (cdr.menu_path, cdr.menu_digits, cdr.language) == (None, None, None)


def without_ivr(tmp_path: Path, features: str) -> Path:
    """The end-to-end configuration with the menu line on an account whose features are
    `features`."""
    config = tmp_path / "source"
    shutil.copytree(E2E_CONFIG, config)
    tariffs = config / "tariffs.yaml"
    account = (
        f'  "{MENU_LINE}":\n    package: e2e-regional\n    prepaid: false\n'
        f"    features: {features}\n"
    )
    tariffs.write_text(tariffs.read_text(encoding="utf-8") + account, encoding="utf-8")
    return config


@pytest.mark.parametrize("features", ["{}", "{ivr: 2026-11-24}"])
async def test_an_account_without_the_ivr_feature_hears_no_menu_and_takes_the_default(
    tmp_path: Path, features: str
) -> None:
    """Not paid for (or not yet on the call's day): nothing is answered or played, the call
    goes where each menu's default leads, and its CDR has no menu path."""
    async with running_router(tmp_path, without_ivr(tmp_path, features)) as router:
        result = await call(router, dialled=MENU_LINE, uniqueid="ivr.7", dtmf=("2", "1"))
        cdr = await finished_cdr(router, "ivr.7")
    assert result.commands == [
        *dial_lines("13800000012"),
        *status_lines("answered", "13800000012", "default"),
    ]
    assert not result.answered
    assert (cdr.outcome, cdr.menu_path, cdr.menu_digits) == (CallOutcome.ANSWERED, None, None)
