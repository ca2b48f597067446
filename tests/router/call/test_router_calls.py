"""The router carries decisions out over real FastAGI sockets, as the recordings show Asterisk.

Each test runs the real daemon, plays one call with the Asterisk protocol simulator and
asserts the exact AGI commands the router sent and the CDR it stored.
"""

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import CallerHangup
from router.simulation.asterisk_agi import Outcome as DialOutcome
from router.storage.cdr import ForwardReason, Outcome
from tests.conftest import (
    MONDAY_MORNING,
    SimulatedClock,
    call,
    finished_cdr,
    running_router,
)


def status_lines(status: str, dest: str, rule: str) -> list[str]:
    """The three HOTLINE_* variables in one round trip (transcripts fact 25)."""
    return [f'EXEC MSet "HOTLINE_STATUS={status},HOTLINE_DEST={dest},HOTLINE_RULE={rule}"']


def dial_lines(number: str, timeout: int = 20) -> list[str]:
    """A Dial attempt and its outcome, read in one round trip (transcripts fact 25)."""
    return [
        f'EXEC Dial "Local/{number}@phones,{timeout}"',
        "GET FULL VARIABLE ${DIALSTATUS},${ANSWEREDTIME_MS},${DIALEDTIME_MS}",
    ]


def prompted_dial_lines(number: str, channel: str, timeout: int = 20) -> list[str]:
    """A Dial on a channel the router answered for a prompt (PIN, menu): the shipped
    dialplan's `U()` subroutine stamps the destination's answer on the caller's `channel`,
    read with the Dial's outcome and Asterisk's clock."""
    return [
        f'EXEC Dial "Local/{number}@phones,{timeout},U(hotline400-answered^{channel})"',
        "GET FULL VARIABLE ${DIALSTATUS},${ANSWEREDTIME_MS},${DIALEDTIME_MS},"
        "${SHARED(HOTLINE_ANSWERED)},${STRFTIME(,UTC,%Y-%m-%dT%H:%M:%S.%3q)}",
    ]


async def test_a_direct_answer_dials_without_answering_first_and_records_the_talk_time(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000001", uniqueid="1795371273.1")
        cdr = await finished_cdr(router, "1795371273.1")
    assert result.commands == [
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert result.answered is False  # the router never sent ANSWER: Dial answered the caller
    assert result.variables["HOTLINE_STATUS"] == "answered"
    assert (cdr.outcome, cdr.number, cdr.caller, cdr.rule) == (
        Outcome.ANSWERED,
        "4000000001",
        "053188889999",
        "default",
    )
    assert (cdr.region.province, cdr.region.city, cdr.region.area_code) == ("山东", "济南", "0531")
    assert cdr.billable_seconds == 3
    assert [(leg.destination, leg.dial_status, leg.talk_seconds) for leg in cdr.legs] == [
        ("13800000011", "ANSWER", 3)
    ]
    assert cdr.started_at == MONDAY_MORNING


async def test_busy_forwards_to_the_busy_number_which_answers(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000002", uniqueid="2.1")
        cdr = await finished_cdr(router, "2.1")
    assert result.commands == [
        *dial_lines("13800000021"),
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert [(leg.destination, leg.dial_status, leg.forward_reason) for leg in cdr.legs] == [
        ("13800000021", "BUSY", ForwardReason.PRIMARY),
        ("13800000011", "ANSWER", ForwardReason.BUSY),
    ]
    assert cdr.outcome is Outcome.ANSWERED


async def test_a_forwarded_legs_ring_is_its_own_not_the_calls_since_it_began(
    tmp_path: Path,
) -> None:
    """DIALEDTIME is the channel's age (agi-more/a_answered): after 20 s on a destination
    that did not answer, the next one's 2.4 s of ringing count 2 s, not 22."""
    speedup = 20.0  # the router times the first leg on its clock: 2.4 s of ringing rounds
    # to 2 whatever its loop is late by, up to 45 ms (0.9 s at this speed)
    answering = DialOutcome.answers(talk_s=3.5, ring_s=2.4)
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        await call(
            router,
            time_scale=1 / speedup,
            dialled="4000000003",
            uniqueid="3.forward",
            destinations={"13800000032": answering},
        )
        cdr = await finished_cdr(router, "3.forward")
    assert cdr.outcome is Outcome.ANSWERED and cdr.billable_seconds == 3
    (first, second) = cdr.legs
    assert 19 <= first.ring_seconds <= 22
    assert (second.dial_status, second.ring_seconds, second.talk_seconds) == ("ANSWER", 2, 3)
    assert cdr.answered_at == second.started_at + timedelta(seconds=2)


async def test_no_answer_twice_then_the_call_ends_as_noanswer(tmp_path: Path) -> None:
    speedup = 40.0  # 20 s of ringing take 0.5 s; 0.1 s of a loaded machine's delay is 4 s
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        result = await call(router, dialled="4000000003", uniqueid="3.1", time_scale=1 / speedup)
        cdr = await finished_cdr(router, "3.1")
    assert result.commands == [
        *dial_lines("13800000031"),
        *dial_lines("13800000032"),
        *dial_lines("13800000033"),
        *status_lines("noanswer", "13800000033", "default"),
    ]
    assert [(leg.dial_status, leg.forward_reason) for leg in cdr.legs] == [
        ("NOANSWER", ForwardReason.PRIMARY),
        ("NOANSWER", ForwardReason.NO_ANSWER),
        ("NOANSWER", ForwardReason.NO_ANSWER),
    ]
    # Asterisk reports no DIALEDTIME for an unanswered Dial: the router times the ringing
    assert all(19 <= leg.ring_seconds <= 24 for leg in cdr.legs), cdr.legs
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.NOANSWER, 0)


async def test_a_forward_the_plan_marks_down_is_never_dialled_the_next_one_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """13800000011 is taken out of service (`down: true` as a share of the route): it rings
    in no role, so the busy chain passes over it to the next busy number."""
    caplog.set_level(logging.INFO, logger="hotline400")
    async with running_router(tmp_path) as router:
        (router.config_dir / "plans" / "4000000002.yaml").write_text(
            """number: "4000000002"
name: Busy then forward, the first forward out of service
forwarding: {on_busy: ["13800000011", "13800000012"]}
default:
  split:
    - {number: "13800000021", percent: 99}
    - {number: "13800000011", percent: 1, down: true}
""",
            encoding="utf-8",
        )
        router.reload()
        result = await call(router, dialled="4000000002", uniqueid="2.down")
        cdr = await finished_cdr(router, "2.down")
    assert result.commands == [
        *dial_lines("13800000021"),
        *dial_lines("13800000012"),
        *status_lines("answered", "13800000012", "default"),
    ]
    assert [(leg.destination, leg.forward_reason) for leg in cdr.legs] == [
        ("13800000021", ForwardReason.PRIMARY),
        ("13800000012", ForwardReason.BUSY),
    ]
    assert "call 2.down: forward 13800000011 skipped: down" in caplog.messages


async def test_a_call_is_forwarded_three_times_at_most(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000004", uniqueid="4.1")
        cdr = await finished_cdr(router, "4.1")
    dialled = [line for line in result.commands if line.startswith("EXEC Dial")]
    assert dialled == [
        'EXEC Dial "Local/13800000021@phones,20"',  # busy
        'EXEC Dial "Local/13800000031@phones,20"',  # forward 1 on busy: no answer
        'EXEC Dial "Local/13800000022@phones,20"',  # forward 2 on no answer: busy
        'EXEC Dial "Local/13800000041@phones,20"',  # forward 3 on busy: congestion
    ]
    assert [leg.dial_status for leg in cdr.legs] == ["BUSY", "NOANSWER", "BUSY", "CONGESTION"]
    assert cdr.outcome is Outcome.BUSY


async def test_the_right_pin_answers_prompts_and_then_dials(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000006", uniqueid="6.1", dtmf=("2468#",))
        cdr = await finished_cdr(router, "6.1")
    assert result.commands == [
        "ANSWER",
        "GET DATA acme/enter-pin 5000 6",
        *prompted_dial_lines("13800000011", result.env["agi_channel"]),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr.outcome, cdr.billable_seconds) == (Outcome.ANSWERED, 3)  # not the PIN's time


async def test_a_caller_channel_the_answer_hook_would_mangle_is_dialled_without_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Gosub would cut ARG1 at the comma and SHARED() find no channel: the Dial goes without
    U(), no stamp is asked for, and the call is put through all the same (its ring then
    comes from AMI; without AMI it is counted as talk, and the log says why)."""
    caplog.set_level(logging.WARNING, logger="hotline400")
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled="4000000006",
            uniqueid="6.9",
            dtmf=("2468#",),
            channel="IAX2/carrier,b-00000001",
        )
        cdr = await finished_cdr(router, "6.9")
    assert result.commands[2:4] == dial_lines("13800000011")
    assert cdr.outcome is Outcome.ANSWERED
    assert (
        "call 6.9: the caller's channel 'IAX2/carrier,b-00000001' cannot be named in Dial's "
        "U(hotline400-answered) and AMI told no ring: the ring is counted as talk" in caplog.text
    )


async def test_a_wrong_pin_three_times_ends_the_call_as_pin_failed(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router, dialled="4000000006", uniqueid="6.2", dtmf=("1111#", None, "9999#")
        )
        cdr = await finished_cdr(router, "6.2")
    assert result.commands == [
        "ANSWER",
        "GET DATA acme/enter-pin 5000 6",
        "GET DATA acme/pin-wrong 5000 6",
        "GET DATA acme/pin-wrong 5000 6",
        'STREAM FILE acme/pin-failed ""',
        *status_lines("pin_failed", "", "default"),
        'EXEC Hangup "16"',
    ]
    assert (cdr.outcome, cdr.note, cdr.legs) == (Outcome.PIN_FAILED, "wrong PIN 3 times", ())


async def test_a_pin_prompt_that_cannot_be_played_is_logged_and_noted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """GET DATA answers -1 and the caller is still there (fact 20): the prompt file is
    missing. Nobody can enter the PIN, so the call is refused as any failed PIN is, and the
    log and the CDR say why: no caller keyed a wrong PIN."""
    caplog.set_level(logging.WARNING, logger="hotline400")
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled="4000000006",
            uniqueid="6.4",
            missing_sounds=frozenset({"acme/enter-pin", "acme/pin-wrong"}),
        )
        cdr = await finished_cdr(router, "6.4")
    assert result.commands[:3] == ["ANSWER", "GET DATA acme/enter-pin 5000 6", "CHANNEL STATUS"]
    assert cdr.outcome is Outcome.PIN_FAILED
    assert cdr.note == "no PIN entered: the PIN prompt cannot be played"
    assert "call 6.4: the PIN prompt 'acme/enter-pin' cannot be played" in caplog.text
    assert "call 6.4: the PIN prompt 'acme/pin-wrong' cannot be played" in caplog.text


async def test_a_caller_hanging_up_at_the_pin_prompt_ends_the_call_cleanly(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router, dialled="4000000006", uniqueid="6.3", hangup=CallerHangup.at_prompt(1)
        )
        cdr = await finished_cdr(router, "6.3")
    # GET DATA answers -1 for a hang-up and for a missing prompt alike (fact 20): CHANNEL
    # STATUS, answered by HANGUP and 511, tells which, as in a menu; no prompt follows, and
    # a caller gone ends the call as noanswer like a caller gone in a menu
    assert result.commands == [
        "ANSWER",
        "GET DATA acme/enter-pin 5000 6",
        "CHANNEL STATUS",
        *status_lines("noanswer", "", "default"),
    ]
    assert result.replies[1] == ["200 result=-1"]
    assert result.replies[2] == ["511 Command Not Permitted on a dead channel or intercept routine"]
    assert result.hangup_lines >= 1
    assert (cdr.outcome, cdr.note) == (Outcome.NOANSWER, "caller hung up at the PIN prompt")


async def test_a_screened_region_hears_the_announcement_unanswered_and_is_rejected(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000005", uniqueid="5.1", caller_id="01088881234")
        cdr = await finished_cdr(router, "5.1")
    assert result.commands == [
        "EXEC Progress",
        'EXEC Playback "acme/not-served,noanswer"',
        *status_lines("blocked", "", ""),
        'EXEC Hangup "21"',
    ]
    assert result.answered is False
    assert (cdr.outcome, cdr.note) == (Outcome.BLOCKED, "blocked: caller region is screened")


async def test_a_caller_from_an_allowed_region_gets_through(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000005", uniqueid="5.2", caller_id="02088881234")
    assert result.variables["HOTLINE_STATUS"] == "answered"


async def test_a_blacklisted_caller_is_blocked(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000005", uniqueid="5.3", caller_id="020-8888-0000")
        cdr = await finished_cdr(router, "5.3")
    assert result.variables["HOTLINE_STATUS"] == "blocked"
    assert cdr.note == "blacklisted: caller is blacklisted"


async def test_a_suspended_number_connects_nothing(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4000000007", uniqueid="7.1")
        cdr = await finished_cdr(router, "7.1")
    assert result.commands[-2:] == [*status_lines("suspended", "", ""), 'EXEC Hangup "63"']
    assert cdr.outcome is Outcome.SUSPENDED


async def test_an_unknown_400_number_is_hung_up_as_unallocated(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="4009999999", uniqueid="9.1")
        cdr = await finished_cdr(router, "9.1")
    assert result.commands == [*status_lines("unknown_number", "", ""), 'EXEC Hangup "1"']
    assert (cdr.outcome, cdr.number) == (Outcome.UNKNOWN_NUMBER, "4009999999")


async def test_the_dialled_number_comes_from_agi_dnid_when_a_trunk_fills_it(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled="s", dnid="4000000001", uniqueid="1.2")
    assert result.variables["HOTLINE_STATUS"] == "answered"


async def test_a_caller_hanging_up_while_ringing_ends_the_chain_and_completes_the_cdr(
    tmp_path: Path,
) -> None:
    speedup = 40.0
    async with running_router(tmp_path, clock=SimulatedClock(speedup)) as router:
        result = await call(
            router,
            dialled="4000000003",
            uniqueid="3.2",
            hangup=CallerHangup.during_dial(nth=1, after_s=4.0),
            time_scale=1 / speedup,
        )
        cdr = await finished_cdr(router, "3.2")
    assert result.commands == [
        *dial_lines("13800000031"),
        *status_lines("noanswer", "13800000031", "default"),
    ]
    assert [leg.dial_status for leg in cdr.legs] == ["CANCEL"]
    assert 3 <= cdr.legs[0].ring_seconds <= 7
    assert (cdr.outcome, cdr.note) == (Outcome.NOANSWER, "caller hung up while ringing")
