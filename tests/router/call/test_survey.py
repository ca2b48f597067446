"""The satisfaction survey over FastAGI: Dial carries `g`, so when the destination hangs up
the caller comes back to the router (transcripts fact 23, agi-vas/survey_after_dial_g),
which asks for one key from 1 to 5 (`GET DATA <prompt> <ms> 1`) and puts the score on the
CDR. Only answered calls, only while the account has `satisfaction_survey` switched on.

The plans: tests/e2e_config/plans/4000000103.yaml surveys every answered call (retries 1,
a prompt for a wrong key, thanks after a score); 4000000105 surveys only the calls its
menu's key 1 sends on (retries 0). Their accounts have the feature on since 2026-01-05.
"""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from router.simulation.asterisk_agi import CallerHangup
from router.simulation.asterisk_agi import Outcome as Plays
from router.storage.cdr import Outcome
from tests.conftest import E2E_CONFIG, call, finished_cdr, running_router
from tests.router.call.test_router_calls import dial_lines, prompted_dial_lines, status_lines

SURVEYED = "4000000103"
MENU_THEN_SURVEY = "4000000105"
ASK = "GET DATA hotline400/survey 6000 1"
WRONG_KEY = 'STREAM FILE hotline400/survey-invalid ""'
THANKS = 'STREAM FILE hotline400/survey-thanks ""'


def dial_g(number: str) -> list[str]:
    """A Dial that gives the caller back when the destination hangs up, and its outcome."""
    first, outcome = dial_lines(number)
    return [first.replace(',20"', ',20,g"'), outcome]


async def test_an_answered_call_is_asked_for_a_score_that_goes_on_the_cdr(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=SURVEYED, uniqueid="sv.1", dtmf=("4",))
        cdr = await finished_cdr(router, "sv.1")
        scored = router.metrics.registry.get_sample_value(
            "hotline400_surveys_total", {"number": SURVEYED, "result": "scored"}
        )
        average = router.metrics.registry.get_sample_value(
            "hotline400_survey_score_sum", {"number": SURVEYED}
        )
    assert result.commands == [
        *dial_g("13800000011"),
        ASK,
        THANKS,
        *status_lines("answered", "13800000011", "default"),
    ]
    assert result.dials[0].result == "0"  # the caller stayed up for the survey
    assert (cdr.outcome, cdr.survey_score, cdr.billable_seconds) == (Outcome.ANSWERED, 4, 3)
    assert (scored, average) == (1.0, 4.0)


async def test_a_wrong_key_hears_why_and_is_asked_again(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(router, dialled=SURVEYED, uniqueid="sv.2", dtmf=("9", "2"))
        cdr = await finished_cdr(router, "sv.2")
    assert result.commands == [
        *dial_g("13800000011"),
        ASK,
        WRONG_KEY,
        ASK,
        THANKS,
        *status_lines("answered", "13800000011", "default"),
    ]
    assert cdr.survey_score == 2


async def test_no_valid_key_within_the_retries_leaves_no_score(tmp_path: Path) -> None:
    # As recorded (survey_after_dial_g): 9, then 9 again, then the router gives up.
    async with running_router(tmp_path) as router:
        wrong = await call(router, dialled=SURVEYED, uniqueid="sv.3", dtmf=("9", "9"))
        silent = await call(router, dialled=SURVEYED, uniqueid="sv.4")
        cdr_wrong = await finished_cdr(router, "sv.3")
        cdr_silent = await finished_cdr(router, "sv.4")
        no_score = router.metrics.registry.get_sample_value(
            "hotline400_surveys_total", {"number": SURVEYED, "result": "no_score"}
        )
    assert wrong.commands[2:] == [
        ASK,
        WRONG_KEY,
        ASK,
        *status_lines("answered", "13800000011", "default"),
    ]
    assert silent.commands[2:] == [ASK, ASK, *status_lines("answered", "13800000011", "default")]
    assert cdr_wrong.survey_score is None and cdr_silent.survey_score is None
    assert cdr_wrong.outcome is cdr_silent.outcome is Outcome.ANSWERED
    assert no_score == 2.0


async def test_a_caller_hanging_up_during_the_survey_leaves_a_complete_cdr_billed_as_before(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path) as router:
        gone = await call(
            router, dialled=SURVEYED, uniqueid="sv.5", hangup=CallerHangup.at_prompt(1)
        )
        scored = await call(router, dialled=SURVEYED, uniqueid="sv.6", dtmf=("5",))
        cdr_gone = await finished_cdr(router, "sv.5")
        cdr_scored = await finished_cdr(router, "sv.6")
        ledger = await router.store.ledger(SURVEYED)
    # GET DATA answers -1, as for a missing prompt (fact 20): CHANNEL STATUS, answered by
    # HANGUP and 511, tells the caller is gone; the variables are still set.
    assert gone.commands == [
        *dial_g("13800000011"),
        ASK,
        "CHANNEL STATUS",
        *status_lines("answered", "13800000011", "default"),
    ]
    assert gone.hung_up_by == "caller" and scored.commands[-2] == THANKS
    assert (cdr_gone.outcome, cdr_gone.survey_score, cdr_gone.note) == (
        Outcome.ANSWERED,
        None,
        "caller hung up during the survey",
    )
    assert cdr_gone.ended_at is not None and len(cdr_gone.legs) == 1
    # The talk time is Dial's ANSWEREDTIME: the survey adds nothing to the price.
    assert cdr_gone.billable_seconds == cdr_scored.billable_seconds == 3
    shares = (cdr_gone.caller_share, cdr_gone.callee_share, cdr_gone.total)
    assert shares == (cdr_scored.caller_share, cdr_scored.callee_share, cdr_scored.total)
    assert cdr_gone.total is not None and cdr_gone.total > Decimal("0.00")
    assert [entry.amount for entry in ledger] == [-cdr_gone.callee_share, -cdr_scored.callee_share]


async def test_calls_nobody_answered_are_never_surveyed(tmp_path: Path) -> None:
    busy = {"13800000011": Plays("BUSY"), "13800000012": Plays("BUSY")}
    async with running_router(tmp_path) as router:
        result = await call(
            router, dialled=SURVEYED, uniqueid="sv.7", destinations=busy, dtmf=("5",)
        )
        unanswered = await call(
            router,
            dialled=SURVEYED,
            uniqueid="sv.8",
            destinations={"13800000011": Plays("NOANSWER")},
            dtmf=("5",),
        )
        cdr = await finished_cdr(router, "sv.7")
        cdr_unanswered = await finished_cdr(router, "sv.8")
    assert result.commands == [
        *dial_g("13800000011"),
        *dial_g("13800000012"),
        *status_lines("busy", "13800000012", "default"),
    ]
    assert unanswered.commands == [
        *dial_g("13800000011"),
        *status_lines("noanswer", "13800000011", "default"),
    ]
    assert (cdr.outcome, cdr.survey_score) == (Outcome.BUSY, None)
    assert (cdr_unanswered.outcome, cdr_unanswered.survey_score) == (Outcome.NOANSWER, None)


async def test_a_caller_hanging_up_while_bridged_is_not_surveyed(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled=SURVEYED,
            uniqueid="sv.9",
            hangup=CallerHangup.during_dial(1, after_s=2.0),
            dtmf=("5",),
        )
        cdr = await finished_cdr(router, "sv.9")
    assert result.dials[0].result == "-1"  # the caller left: Dial does not give them back
    assert result.commands == [
        *dial_g("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr.outcome, cdr.survey_score, cdr.billable_seconds) == (Outcome.ANSWERED, None, 2)


async def test_a_survey_prompt_that_cannot_be_played_asks_nothing(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        result = await call(
            router,
            dialled=SURVEYED,
            uniqueid="sv.10",
            missing_sounds=frozenset({"hotline400/survey"}),
        )
        cdr = await finished_cdr(router, "sv.10")
    assert result.commands == [
        *dial_g("13800000011"),
        ASK,
        "CHANNEL STATUS",  # 200 result=6: the caller is there, the prompt is not (fact 20)
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr.outcome, cdr.survey_score, cdr.note) == (Outcome.ANSWERED, None, None)


async def test_only_the_route_that_asks_surveys_its_callers(tmp_path: Path) -> None:
    async with running_router(tmp_path) as router:
        asked = await call(router, dialled=MENU_THEN_SURVEY, uniqueid="sv.11", dtmf=("1", "3"))
        not_asked = await call(router, dialled=MENU_THEN_SURVEY, uniqueid="sv.12", dtmf=("2", "3"))
        cdr_asked = await finished_cdr(router, "sv.11")
        cdr_not_asked = await finished_cdr(router, "sv.12")
    dial, outcome = prompted_dial_lines("13800000013", asked.env["agi_channel"])
    assert asked.commands == [
        "ANSWER",
        "GET DATA acme/main 5000 1",
        dial.replace(",20,U(", ",20,gU("),
        outcome,
        ASK,
        *status_lines("answered", "13800000013", "default"),
    ]
    assert not_asked.commands == [
        "ANSWER",
        "GET DATA acme/main 5000 1",
        *prompted_dial_lines("13800000011", not_asked.env["agi_channel"]),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr_asked.menu_path, cdr_asked.survey_score) == ("main:1", 3)
    assert cdr_not_asked.survey_score is None


async def test_no_survey_while_the_account_has_the_feature_switched_off(
    tmp_path: Path,
) -> None:
    config = tmp_path / "e2e"
    shutil.copytree(E2E_CONFIG, config)
    tariffs = config / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    off = text.replace("features: {satisfaction_survey: 2026-01-05}", "features: {}", 1)
    assert off != text
    tariffs.write_text(off, encoding="utf-8")
    async with running_router(tmp_path, config=config) as router:
        result = await call(router, dialled=SURVEYED, uniqueid="sv.13", dtmf=("5",))
        cdr = await finished_cdr(router, "sv.13")
    assert result.commands == [
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert cdr.survey_score is None


async def test_the_survey_is_asked_in_the_plans_language(tmp_path: Path) -> None:
    """A call that heard no prompt before (no menu, PIN or notice) still has its channel in
    Asterisk's language: the survey switches it to the plan's first (fact 19)."""
    config = tmp_path / "e2e"
    shutil.copytree(E2E_CONFIG, config)
    plan = config / "plans" / f"{SURVEYED}.yaml"
    plan.write_text(plan.read_text(encoding="utf-8") + "language: zh\n", encoding="utf-8")
    async with running_router(tmp_path, config=config) as router:
        result = await call(router, dialled=SURVEYED, uniqueid="sv.zh", dtmf=("4",))
        cdr = await finished_cdr(router, "sv.zh")
    assert result.commands[:5] == [
        *dial_g("13800000011"),
        'EXEC Set "CHANNEL(language)=zh"',
        ASK,
        THANKS,
    ]
    assert (cdr.survey_score, cdr.language) == (4, "zh")
