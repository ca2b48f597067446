"""Call recording with notice: where a call's recording goes, and whether a call is recorded.

Asterisk does not expand variables inside an `EXEC` argument (transcripts fact 21:
`MixMonitor "/recordings/${UNIQUEID}.wav,b"` made a file literally named `${UNIQUEID}.wav`),
so the router builds each path itself from the call's uniqueid: one directory per 400
number and local day under router.yaml's `recordings_dir`, which the console and
`hotline400 recordings purge` read too.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import PurePosixPath

from dialplan.plan import Plan

RECORDING = "recording"
"""The feature of tariffs.yaml an account switches on to have its calls recorded."""
_CALL_ID = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z._-]{0,63}(?:~[0-9]{1,9})?")
"""A uniqueid that is safe as a file name and inside MixMonitor's argument (no comma), with
the `~N` of a repeat session on its channel (router.call.call_ids)."""


def recording_path(
    recordings_dir: str, plan: Plan, call_id: str, started: datetime
) -> PurePosixPath | None:
    """`<recordings_dir>/<400 number>/<local day>/<uniqueid>.wav`, or None for a call id
    that cannot be a file name (the call then goes through unrecorded)."""
    if not _CALL_ID.fullmatch(call_id):
        return None
    day = started.astimezone(plan.zone()).date().isoformat()
    return PurePosixPath(recordings_dir) / plan.number / day / f"{call_id}.wav"
