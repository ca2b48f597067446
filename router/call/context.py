"""CallContext: what the agi_* environment says of a call, read defensively.

Every value comes from the network and the carrier: the caller ID may be anything, the
uniqueid is bounded and checked, and the dialled 400 number is read from `agi_dnid` when a
real trunk filled it and from `agi_extension` otherwise (Asterisk reports `agi_dnid:
unknown` on Local channels and on many trunks).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from dialplan.geo import CallerInfo, locate
from router.fastagi.quoting import clean

_UNIQUEID = re.compile(r"[0-9A-Za-z._-]{1,64}")
_SERVICE_NUMBER = re.compile(r"(?:\+?86)?(400\d{7})")
_MAX_FIELD = 128
_LANGUAGE = re.compile(r"[A-Za-z0-9_-]{1,16}")


@dataclass(frozen=True, slots=True)
class CallContext:
    call_id: str
    channel: str
    dialled: str
    """The 400 number, 10 digits, or "" when the environment names none."""
    caller_raw: str
    caller_name: str
    caller: CallerInfo
    language: str = ""
    """The channel's prompt language as Asterisk reports it (agi_language), "" if odd."""


def dialled_number(env: Mapping[str, str]) -> str:
    """The 400 number: agi_dnid when it is one, else agi_extension, else the script path."""
    for key in ("agi_dnid", "agi_extension", "agi_network_script"):
        match = _SERVICE_NUMBER.fullmatch(env.get(key, "").strip())
        if match:
            return match.group(1)
    return ""


def context_from(env: Mapping[str, str]) -> CallContext:
    uniqueid = env.get("agi_uniqueid", "")
    call_id = uniqueid if _UNIQUEID.fullmatch(uniqueid) else f"hotline400-{uuid.uuid4().hex}"
    caller_raw = clean(env.get("agi_callerid", ""), _MAX_FIELD)
    return CallContext(
        call_id=call_id,
        channel=clean(env.get("agi_channel", ""), _MAX_FIELD),
        dialled=dialled_number(env),
        caller_raw=caller_raw,
        caller_name=clean(env.get("agi_calleridname", ""), _MAX_FIELD),
        caller=locate(caller_raw),
        language=language if _LANGUAGE.fullmatch(language := env.get("agi_language", "")) else "",
    )
