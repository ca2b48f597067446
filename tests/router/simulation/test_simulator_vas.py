"""The simulator answers the value-added steps as the recorded Asterisk 22 did (agi-vas/).

Each transcript is a recording of ../shared/asterisk-transcripts/agi-vas/, command for
command and reply for reply. The recordings end with the server closing its side
without reading further; here the server half-closes and reads the HANGUP Asterisk then
sends (fact 14). The rig's `beep` is 2400 samples long there.
"""

import pytest

from router.simulation.asterisk_agi import CallerHangup, SimulatedCall
from tests.router.simulation.test_simulator import assert_replays

VAS_BEEP = 2400


def vas_call(dialled: str, **fields: object) -> SimulatedCall:
    return SimulatedCall(  # type: ignore[arg-type]
        dialled=dialled,
        script=dialled,
        priority="2",
        caller_id="01088889999",
        caller_name="Caller",
        sound_samples=VAS_BEEP,
        **fields,
    )


IVR_MENU_DIGIT_AND_LANGUAGE = """
>> ANSWER
<< 200 result=0
>> EXEC Set "CHANNEL(language)=en"
<< 200 result=0
>> GET VARIABLE CHANNEL(language)
<< 200 result=1 (en)
>> GET OPTION beep 123 3000
<< 200 result=49 endpos=2400
>> GET DATA beep 3000 1
<< 200 result=2
>> WAIT FOR DIGIT 3000
<< 200 result=51
>> EXEC Set "CHANNEL(language)=zh"
<< 200 result=0
>> STREAM FILE beep ""
<< 200 result=0 endpos=2400
>> GET DATA no-such-prompt 500 1
<< 200 result=-1
-- server half-closes
<< HANGUP
"""


async def test_fact_18_to_20_buffered_keys_language_and_a_missing_prompt() -> None:
    call = vas_call("4000000101", keys="1234#", missing_sounds=frozenset({"zh/no-such-prompt"}))
    result = await assert_replays(IVR_MENU_DIGIT_AND_LANGUAGE, call)
    assert result.variables["CHANNEL(language)"] == "zh"
    assert result.answered


RECORDING_NOTICE_THEN_DIAL = """
>> EXEC Progress
<< 200 result=0
>> EXEC Playback "beep,noanswer"
<< 200 result=0
>> EXEC MixMonitor "/recordings/${UNIQUEID}.wav,b"
<< 200 result=0
>> GET VARIABLE MIXMONITOR_FILENAME
<< 200 result=1 (/recordings/${UNIQUEID}.wav)
>> EXEC Dial "Local/13800000011@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (3)
>> EXEC StopMixMonitor ""
<< 200 result=0
-- server half-closes
<< HANGUP
"""


async def test_fact_21_22_notice_as_early_media_and_a_literal_recording_path() -> None:
    result = await assert_replays(RECORDING_NOTICE_THEN_DIAL, vas_call("4000000102"))
    assert result.early_media and not result.answered  # the notice cost the caller nothing


RECORDING_PATH_FROM_UNIQUEID = """
>> GET VARIABLE UNIQUEID
<< 200 result=1 (1796453019.12165)
>> EXEC MixMonitor "/recordings/rec-test.wav,b"
<< 200 result=0
>> EXEC Dial "Local/13800000011@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
-- server half-closes
<< HANGUP
"""


async def test_fact_21_the_path_is_built_by_the_router() -> None:
    call = vas_call("4000000108", uniqueid="1796453019.12165")
    result = await assert_replays(RECORDING_PATH_FROM_UNIQUEID, call)
    assert result.variables["MIXMONITOR_FILENAME"] == "/recordings/rec-test.wav"


SURVEY_AFTER_DIAL_G = """
>> EXEC Dial "Local/13800000011@phones,20,g"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
>> GET VARIABLE ANSWEREDTIME
<< 200 result=1 (3)
>> CHANNEL STATUS
<< 200 result=6
>> GET DATA beep 6000 1
<< 200 result=9
>> GET DATA beep 3000 1
<< 200 result=9
>> SET VARIABLE HOTLINE_SURVEY "done"
<< 200 result=1
-- server half-closes
<< HANGUP
"""


async def test_fact_23_the_caller_stays_up_for_the_survey_after_dial_g() -> None:
    await assert_replays(SURVEY_AFTER_DIAL_G, vas_call("4000000103", dtmf=("9", "9")))


HOLD_RINGING_THEN_DIAL = """
>> EXEC Ringing
<< 200 result=0
>> EXEC Wait "2"
<< 200 result=0
>> CHANNEL STATUS
<< 200 result=4
>> EXEC Dial "Local/13800000061@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
-- server half-closes
<< HANGUP
"""


async def test_fact_24_held_unanswered_with_ringing_then_dialled() -> None:
    result = await assert_replays(HOLD_RINGING_THEN_DIAL, vas_call("4000000104"))
    assert not result.answered
    assert result.virtual_s == pytest.approx(2.5)


HOLD_CALLER_GIVES_UP = """
>> EXEC Ringing
<< 200 result=0
>> EXEC Wait "5"
<< 200 result=-1
>> CHANNEL STATUS
<< HANGUP
<< 511 Command Not Permitted on a dead channel or intercept routine
>> EXEC Wait "1"
<< 200 result=0
>> GET VARIABLE DIALSTATUS
<< 200 result=0
-- server half-closes
<< HANGUP
"""


async def test_fact_24_a_held_caller_gives_up() -> None:
    call = vas_call("4000000105", hangup=CallerHangup.while_waiting(1, after_s=3.0))
    result = await assert_replays(HOLD_CALLER_GIVES_UP, call)
    assert result.hung_up_by == "caller"
    assert result.virtual_s == pytest.approx(4.0)


MOH_HOLD_ANSWERED_QUEUE = """
>> ANSWER
<< 200 result=0
>> EXEC MusicOnHold ",2"
<< 200 result=0
>> EXEC Dial "Local/13800000061@phones,20"
<< 200 result=-1
>> GET VARIABLE DIALSTATUS
<< 200 result=1 (ANSWER)
-- server half-closes
<< HANGUP
"""


async def test_fact_24_music_on_hold_without_a_class_returns_at_once() -> None:
    await assert_replays(MOH_HOLD_ANSWERED_QUEUE, vas_call("4000000106"))


async def test_a_caller_hanging_up_during_an_announcement_stops_it() -> None:
    transcript = """
>> EXEC Progress
<< 200 result=0
>> EXEC Playback "beep,noanswer"
<< 200 result=-1
>> EXEC MixMonitor "/r/1.wav,b"
<< HANGUP
<< 200 result=-1
>> SET VARIABLE HOTLINE_STATUS "noanswer"
<< 200 result=1
-- server half-closes
<< HANGUP
"""
    call = vas_call("4000000102", hangup=CallerHangup.during_playback(1))
    result = await assert_replays(transcript, call)
    assert result.hung_up_by == "caller"


async def test_playback_reports_in_playbackstatus_whether_the_sound_was_played() -> None:
    """app_playback answers 0 for a file it cannot play (`res = 0; mres = 1;`) and says so
    only in PLAYBACKSTATUS (FAILED; SUCCESS once played, ami/misc.ami); -1 is a hang-up."""
    transcript = """
>> EXEC Playback "beep,noanswer"
<< 200 result=0
>> GET VARIABLE PLAYBACKSTATUS
<< 200 result=1 (SUCCESS)
>> EXEC Playback "no-such-notice,noanswer"
<< 200 result=0
>> GET VARIABLE PLAYBACKSTATUS
<< 200 result=1 (FAILED)
-- server half-closes
<< HANGUP
"""
    call = vas_call("4000000102", missing_sounds=frozenset({"no-such-notice"}))
    await assert_replays(transcript, call)


async def test_a_playback_stopped_by_a_hang_up_has_failed() -> None:
    transcript = """
>> EXEC Playback "beep,noanswer"
<< 200 result=-1
>> GET VARIABLE PLAYBACKSTATUS
<< HANGUP
<< 200 result=1 (FAILED)
-- server half-closes
<< HANGUP
"""
    call = vas_call("4000000102", hangup=CallerHangup.during_playback(1))
    await assert_replays(transcript, call)


async def test_a_caller_hanging_up_during_a_stream_file_stops_it() -> None:
    """res_agi's STREAM FILE answers -1 with where the sound stopped when the caller hangs
    up during it (an invalid-key prompt, a survey's thanks), then HANGUP comes before the
    next reply and channel commands get 511."""
    transcript = """
>> STREAM FILE beep ""
<< 200 result=-1 endpos=1200
>> GET DATA beep 3000 1
<< HANGUP
<< 511 Command Not Permitted on a dead channel or intercept routine
-- server half-closes
<< HANGUP
"""
    call = vas_call("4000000101", hangup=CallerHangup.during_sound(1))
    result = await assert_replays(transcript, call)
    assert result.hung_up_by == "caller"
