"""Whether a call gets a feature the account pays for (IVR menus, recording, the survey):
tariffs.yaml says from which day each account has it on, and the day of a call is the plan's
own."""

from __future__ import annotations

from datetime import datetime

from dialplan.plan import Plan
from rating.tariff import Tariffs

IVR = "ivr"
"""The feature that plays a plan's menus; without it a call takes each menu's default."""
NO_IVR = "the account has no ivr feature"


def feature_on(plan: Plan, tariffs: Tariffs | None, feature: str, at: datetime) -> bool:
    """The account has `feature` switched on the plan's day of `at` (or is not rated)."""
    local_day = at.astimezone(plan.zone()).date()
    return tariffs is None or tariffs.feature_on(plan.number, feature, local_day)
