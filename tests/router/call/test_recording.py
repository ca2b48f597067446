"""Call recording with notice over FastAGI: the caller hears the notice unanswered first
(`EXEC Progress`, `EXEC Playback "<notice>,noanswer"`, transcripts fact 22), then MixMonitor
records on a path the router built from the call's uniqueid (fact 21: Asterisk would not
expand `${UNIQUEID}`), `b` so only the bridged call is recorded; the answered call's CDR
names the file. Only while the account has the recording feature switched on.

The plans: tests/e2e_config/plans/4000000102.yaml records every call (its account has
`recording` on); 4000000104 records only its rule for Beijing callers.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from router.simulation.asterisk_agi import CallerHangup
from router.simulation.asterisk_agi import Outcome as Plays
from router.storage.cdr import Outcome
from tests.conftest import E2E_CONFIG, call, finished_cdr, running_router
from tests.router.call.test_router_calls import dial_lines, status_lines

RECORDED = "4000000102"
SALES = "4000000104"
DAY = "2026-11-23"  # MONDAY_MORNING, the routers' clock in these tests


def notice(prompt: str = "hotline400/recording-notice") -> list[str]:
    """The notice as early media, then whether it was played: Playback answers 0 for a
    file it cannot play too, only PLAYBACKSTATUS tells (SUCCESS or FAILED)."""
    return ["EXEC Progress", f'EXEC Playback "{prompt},noanswer"', "GET VARIABLE PLAYBACKSTATUS"]


def mixmonitor(recordings: Path, number: str, call_id: str) -> str:
    return f'EXEC MixMonitor "{recordings}/{number}/{DAY}/{call_id}.wav,b"'


async def test_the_caller_hears_the_notice_unanswered_then_the_answered_call_is_recorded(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "recordings"
    async with running_router(tmp_path, recordings_dir=str(recordings)) as router:
        result = await call(
            router, dialled=RECORDED, uniqueid="1796452949.12141", recordings_on_disk=True
        )
        cdr = await finished_cdr(router, "1796452949.12141")
    assert result.commands == [
        *notice(),
        mixmonitor(recordings, RECORDED, "1796452949.12141"),
        *dial_lines("13800000011"),
        "EXEC StopMixMonitor",
        *status_lines("answered", "13800000011", "default"),
    ]
    assert result.early_media and not result.answered  # the notice cost the caller nothing
    file = recordings / RECORDED / DAY / "1796452949.12141.wav"
    assert cdr.outcome is Outcome.ANSWERED and cdr.recording_path == str(file)
    assert file.read_bytes()[:4] == b"RIFF" and file.stat().st_size == 44


async def test_a_forwarded_call_is_recorded_once_and_an_unanswered_one_names_no_file(
    tmp_path: Path,
) -> None:
    recordings = tmp_path / "recordings"
    busy_then_answer = {"13800000011": "BUSY"}
    async with running_router(tmp_path, recordings_dir=str(recordings)) as router:
        forwarded = await call(
            router, dialled=RECORDED, uniqueid="rec.2", destinations=_outcomes(busy_then_answer)
        )
        unanswered = await call(
            router,
            dialled=RECORDED,
            uniqueid="rec.3",
            destinations=_outcomes({"13800000011": "BUSY", "13800000012": "BUSY"}),
        )
        cdr_forwarded = await finished_cdr(router, "rec.2")
        cdr_unanswered = await finished_cdr(router, "rec.3")
    assert forwarded.commands == [
        *notice(),
        mixmonitor(recordings, RECORDED, "rec.2"),
        *dial_lines("13800000011"),
        *dial_lines("13800000012"),
        "EXEC StopMixMonitor",
        *status_lines("answered", "13800000012", "default"),
    ]
    assert cdr_forwarded.recording_path == f"{recordings}/{RECORDED}/{DAY}/rec.2.wav"
    assert unanswered.commands[-2:] == [
        "EXEC StopMixMonitor",
        *status_lines("busy", "13800000012", "default"),
    ]
    assert cdr_unanswered.outcome is Outcome.BUSY and cdr_unanswered.recording_path is None


async def test_a_caller_hanging_up_during_the_notice_is_never_recorded_nor_dialled(
    tmp_path: Path,
) -> None:
    async with running_router(tmp_path, recordings_dir=str(tmp_path / "r")) as router:
        result = await call(
            router, dialled=RECORDED, uniqueid="rec.4", hangup=CallerHangup.during_playback(1)
        )
        cdr = await finished_cdr(router, "rec.4")
    # Asterisk tells of the hang-up (HANGUP) before the reply to PLAYBACKSTATUS.
    assert result.commands == [
        *notice(),
        *status_lines("noanswer", "", "default"),
    ]
    assert (cdr.outcome, cdr.note) == (
        Outcome.NOANSWER,
        "caller hung up during the recording notice",
    )
    assert cdr.ended_at is not None and cdr.legs == () and cdr.recording_path is None


async def test_a_notice_that_cannot_be_played_records_nothing(tmp_path: Path) -> None:
    """The caller must be told before a call is recorded; Playback of a missing file still
    answers 0 and only PLAYBACKSTATUS=FAILED says the caller heard nothing."""
    async with running_router(tmp_path, recordings_dir=str(tmp_path / "r")) as router:
        result = await call(
            router,
            dialled=RECORDED,
            uniqueid="rec.5",
            missing_sounds=frozenset({"hotline400/recording-notice"}),
        )
        cdr = await finished_cdr(router, "rec.5")
    assert result.commands == [
        *notice(),
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert result.variables.get("MIXMONITOR_FILENAME") is None
    assert (cdr.outcome, cdr.recording_path) == (Outcome.ANSWERED, None)
    assert cdr.note == "recording notice not played: not recorded"


async def test_a_recording_that_does_not_start_leaves_a_note_and_names_no_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MixMonitor answering -1 on a live channel started no recording: the call goes through
    as it would unrecorded, its CDR says so and names no file that will never exist, and the
    log says it once."""
    recordings = tmp_path / "recordings"
    caplog.set_level(logging.WARNING, logger="hotline400")
    async with running_router(tmp_path, recordings_dir=str(recordings)) as router:
        result = await call(
            router,
            dialled=RECORDED,
            uniqueid="rec.8",
            recordings_on_disk=True,
            mixmonitor_fails=True,
        )
        cdr = await finished_cdr(router, "rec.8")
    assert result.commands == [
        *notice(),
        mixmonitor(recordings, RECORDED, "rec.8"),
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert (cdr.outcome, cdr.recording_path) == (Outcome.ANSWERED, None)
    assert cdr.note == "recording did not start: not recorded"
    assert not (recordings / RECORDED / DAY / "rec.8.wav").exists()
    told = [line for line in caplog.messages if "rec.8" in line and "MixMonitor" in line]
    assert len(told) == 1, caplog.text


async def test_only_the_rule_that_records_plays_the_notice(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    async with running_router(tmp_path, recordings_dir=str(recordings)) as router:
        beijing = await call(router, dialled=SALES, uniqueid="rec.6", caller_id="01088889999")
        jinan = await call(router, dialled=SALES, uniqueid="rec.7", caller_id="053188889999")
        recorded = await finished_cdr(router, "rec.6")
        unrecorded = await finished_cdr(router, "rec.7")
    assert beijing.commands[:4] == [
        *notice("acme/recorded"),
        mixmonitor(recordings, SALES, "rec.6"),
    ]
    assert recorded.recording_path is not None
    assert jinan.commands == [
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert unrecorded.recording_path is None


async def test_no_recording_while_the_account_has_the_feature_switched_off(
    tmp_path: Path,
) -> None:
    config = tmp_path / "e2e"
    shutil.copytree(E2E_CONFIG, config)
    tariffs = config / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    switched_on = "features: {recording: 2026-01-05}\n    recording_retention_days"
    off = text.replace(switched_on, "recording_retention_days")
    assert off != text
    tariffs.write_text(off, encoding="utf-8")
    async with running_router(
        tmp_path, config=config, recordings_dir=str(tmp_path / "r")
    ) as router:
        result = await call(router, dialled=RECORDED, uniqueid="rec.8")
        cdr = await finished_cdr(router, "rec.8")
    assert result.commands == [
        *dial_lines("13800000011"),
        *status_lines("answered", "13800000011", "default"),
    ]
    assert not result.early_media and cdr.recording_path is None


def _outcomes(statuses: dict[str, str]) -> dict[str, Plays]:
    return {number: Plays(status) for number, status in statuses.items()}  # type: ignore[arg-type]
