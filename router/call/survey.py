"""The satisfaction survey after an answered call: whether a call is surveyed, and the
questions asked over AGI.

Dial's `g` option gives the caller back to the router when the destination hangs up
(transcripts fact 23: `EXEC Dial "...,20,g"` answers `200 result=0`, the caller still up);
the channel is already answered, so the prompt plays at once and one key is read
(`GET DATA <prompt> <timeout ms> 1`). A key from 1 to 5 is the score; no key, or any other
key, asks again up to the survey's retries. The talk time was read as the Dial returned
(ANSWEREDTIME_MS), so the survey adds nothing to what the call costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dialplan.plan import Survey
from router.fastagi.protocol import AGISession
from router.storage.cdr import SURVEY_SCORES

SATISFACTION_SURVEY = "satisfaction_survey"
"""The feature of tariffs.yaml an account switches on to have its callers surveyed."""
_KEYS = frozenset(str(score) for score in SURVEY_SCORES)

SurveyResult = Literal["scored", "no_score", "hung_up", "unplayable"]
"""How a survey ended (the metrics' SURVEY_RESULTS): a score, none within the retries, the
caller gone, or a prompt that cannot be played (a missing sound file, fact 20)."""


@dataclass(frozen=True, slots=True)
class SurveyAnswer:
    """What the caller answered: the score (None without one) and how the survey ended."""

    score: int | None
    result: SurveyResult


async def ask_score(agi: AGISession, survey: Survey) -> SurveyAnswer:
    """Ask for a score up to 1 + `retries` times; a wrong key first hears the survey's
    `invalid_prompt`, a score its `thanks`. A prompt answering -1 is a hang-up or a missing
    sound file (fact 20): `CHANNEL STATUS` tells which."""
    wrong_key = False
    for _ in range(1 + survey.retries):
        if wrong_key and survey.invalid_prompt is not None:
            await agi.stream_file(survey.invalid_prompt)
        key = None if agi.hung_up else await agi.get_key(survey.prompt, survey.timeout * 1000)
        if key is None and not agi.hung_up:
            await agi.channel_up()
        if agi.hung_up:
            return SurveyAnswer(None, "hung_up")
        if key is None:
            return SurveyAnswer(None, "unplayable")
        if key in _KEYS:
            if survey.thanks is not None and not agi.hung_up:
                await agi.stream_file(survey.thanks)
            return SurveyAnswer(int(key), "scored")
        wrong_key = key != ""
    return SurveyAnswer(None, "no_score")
