"""Call detail records, the operations that build them, and their JSON form.

A CDR is written ahead when a call starts, grows a leg per Dial attempt and is completed
at hang-up; each step is one operation (`StartCall`, `AddLeg`, `FinishCall`) so the
write-behind queue, the store and the spool journal all speak the same small language.
Values are checked when an operation is built, on the call path, so a bad value fails
there and never poisons a batch later. The JSON form keeps money as text (exact fen) and
times as ISO-8601 with their UTC offset.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from rating.ledger import LedgerEntry, LedgerKind
from router.call.channel_contract import Outcome

FEN = Decimal("0.01")


class ForwardReason(StrEnum):
    """Why a leg was dialled: the first destination, or a forward after busy / no answer."""

    PRIMARY = "primary"
    BUSY = "busy"
    NO_ANSWER = "no_answer"


TIME_FIELDS = frozenset({"started_at", "answered_at", "ended_at", "recording_purged_at"})
"""The CDR's fields that hold a moment (a timezone-aware datetime)."""
_MONEY_FIELDS = frozenset({"caller_share", "callee_share", "total"})
_COUNT_FIELDS = frozenset({"billable_seconds", "ring_seconds", "talk_seconds", "seq"})
_ENUM_FIELDS: dict[str, type[Enum]] = {"outcome": Outcome, "forward_reason": ForwardReason}
SURVEY_SCORES = range(1, 6)
"""The scores a caller can give in the satisfaction survey, 1 (poor) to 5 (good)."""

_ALWAYS_AWARE = (ZoneInfo, timezone)
"""tzinfo classes whose utcoffset() is never None."""

FINISH_FIELDS = frozenset(
    {
        "answered_at",
        "ended_at",
        "billable_seconds",
        "outcome",
        "rule",
        "caller_share",
        "callee_share",
        "total",
        "tariff_id",
        "note",
        "menu_path",
        "menu_digits",
        "language",
        "recording_path",
        "survey_score",
    }
)
"""The CDR fields a `FinishCall` may set: everything known only once the call is over."""


def _check_time(name: str, value: object) -> None:
    # ZoneInfo and timezone always give an offset: only other tzinfo classes are asked,
    # since a ZoneInfo lookup is the dearest part of checking the several times of a call.
    if (
        not isinstance(value, datetime)
        or value.tzinfo is None
        or (type(value.tzinfo) not in _ALWAYS_AWARE and value.utcoffset() is None)
    ):
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def _check_money(name: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite() or value != value.quantize(FEN):
        raise ValueError(f"{name} must be a Decimal exact to the fen, got {value!r}")


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def _check_score(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in SURVEY_SCORES:
        raise ValueError(f"{name} must be a survey score from 1 to 5, got {value!r}")


def _check_enum(name: str, value: object) -> None:
    if not isinstance(value, _ENUM_FIELDS[name]):
        raise ValueError(f"{name} must be a {_ENUM_FIELDS[name].__name__}, got {value!r}")


_FIELD_CHECKS: dict[str, Callable[[str, object], None]] = {
    **dict.fromkeys(TIME_FIELDS, _check_time),
    **dict.fromkeys(_MONEY_FIELDS, _check_money),
    **dict.fromkeys(_COUNT_FIELDS, _check_count),
    **dict.fromkeys(_ENUM_FIELDS, _check_enum),
    "survey_score": _check_score,
}
"""The check of each field that has one; text fields have none."""


def _check_field(name: str, value: object) -> None:
    """Refuse values that would be stored wrongly: naive times, inexact money, bad counts."""
    check = _FIELD_CHECKS.get(name)
    if check is not None and value is not None:
        check(name, value)


def _check_fields(record: object) -> None:
    """Check the fields of a Leg or CDR that have a check.

    Every call builds a CDR and a Leg per Dial attempt: going straight to the fields that
    have a check, each with its own small function, costs about half of asking every field
    which kinds it belongs to.
    """
    for name, check in _CHECKED_FIELDS[type(record)]:
        value = getattr(record, name)
        if value is not None:
            check(name, value)


def encode_value(value: Any) -> Any:
    """One field value as JSON / SQL text: ISO-8601 times with offset, money to the fen."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value.quantize(FEN))
    if isinstance(value, Enum):
        return value.value
    return value


def decode_value(name: str, raw: Any) -> Any:
    """The inverse of `encode_value`, led by the field's name."""
    if raw is None:
        return None
    if name in TIME_FIELDS:
        return datetime.fromisoformat(raw)
    if name in _MONEY_FIELDS:
        return Decimal(raw)
    if name in _ENUM_FIELDS:
        return _ENUM_FIELDS[name](raw)
    return raw


@dataclass(frozen=True, slots=True)
class CallerRegion:
    """Where the caller's number is registered; any part may be unknown."""

    province: str | None = None
    city: str | None = None
    area_code: str | None = None


DIALLING = "DIALLING"
"""The status of a leg written ahead as its Dial starts (destination and start time), so a
router that dies mid-call still shows which destination was connected; replaced by Dial's
status when it ends, or by what AMI reports when the call is completed later."""


@dataclass(frozen=True, slots=True)
class Leg:
    """One Dial attempt of a call, numbered from 1 in the order the attempts were made."""

    seq: int
    destination: str
    dial_status: str
    """Asterisk's DIALSTATUS: ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL, ...;
    DIALLING while the Dial runs."""
    started_at: datetime
    ring_seconds: int
    talk_seconds: int
    forward_reason: ForwardReason

    def __post_init__(self) -> None:
        _check_fields(self)

    @property
    def ended_at(self) -> datetime:
        return self.started_at + timedelta(seconds=self.ring_seconds + self.talk_seconds)


@dataclass(frozen=True, slots=True)
class CDR:
    """The record of one inbound call to a 400 number, keyed by Asterisk's uniqueid.

    `caller` is the normalised caller number (None when withheld), `caller_raw` what the
    carrier sent. Money fields stay None until the call is rated; then caller share +
    callee share = total, to the fen.
    """

    call_id: str
    number: str
    caller_raw: str
    caller: str | None
    caller_kind: str
    started_at: datetime
    region: CallerRegion = CallerRegion()
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    billable_seconds: int = 0
    outcome: Outcome = Outcome.IN_PROGRESS
    rule: str | None = None
    caller_share: Decimal | None = None
    callee_share: Decimal | None = None
    total: Decimal | None = None
    tariff_id: str | None = None
    note: str | None = None
    """Hang-up cause or any remark, e.g. "router restarted"."""
    menu_path: str | None = None
    """The IVR menus the caller went through, each with the key that left it
    (`main:2>support:1`; `default` when the retries ran out); None without a menu."""
    menu_digits: str | None = None
    """Every key the caller pressed in the menus, in order (never a PIN)."""
    language: str | None = None
    """The prompt language the call ended in, when the plan or a menu option chose one."""
    recording_path: str | None = None
    """The recording of an answered call (MixMonitor's file, under router.yaml's
    recordings_dir); None when the call was not recorded."""
    recording_purged_at: datetime | None = None
    """When `recordings purge` removed the recording, its retention over."""
    survey_score: int | None = None
    """The caller's satisfaction score (1-5) after the answered call; None when the call
    was not surveyed or the caller gave no score."""
    legs: tuple[Leg, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        _check_fields(self)


@dataclass(frozen=True, slots=True)
class StartCall:
    """Write the CDR ahead as the call starts (normally with outcome in_progress)."""

    cdr: CDR


# `stored_id` of AddLeg, FinishCall and PostLedger: the call id is the stored CDR's, read
# from the store (a call adopted or completed from AMI), written there as it is. Otherwise it
# is the session's own id, which the store follows to the CDR it keyed a repeat session by
# (router.storage.repeats).


@dataclass(frozen=True, slots=True)
class AddLeg:
    """Append a finished Dial attempt to a call (`stored_id`: see above)."""

    call_id: str
    leg: Leg
    stored_id: bool = False


@dataclass(frozen=True, slots=True)
class FinishCall:
    """Set the fields known at the end of a call (or after rating); others stay as they are.

    Money comes as a whole: caller share, callee share and total together, adding up.
    `stored_id`: see above AddLeg.
    """

    call_id: str
    fields: Mapping[str, Any]
    stored_id: bool = False

    def __post_init__(self) -> None:
        if not FINISH_FIELDS.issuperset(self.fields):
            raise ValueError(f"FinishCall cannot set {sorted(set(self.fields) - FINISH_FIELDS)}")
        for name, value in self.fields.items():
            _check_field(name, value)
        money = [self.fields[name] for name in _MONEY_ORDER if name in self.fields]
        if money and len(money) != len(_MONEY_FIELDS):
            raise ValueError("caller_share, callee_share and total must be set together")
        if money and None not in money:
            caller_share, callee_share = self.fields["caller_share"], self.fields["callee_share"]
            if caller_share + callee_share != self.fields["total"]:
                raise ValueError("caller_share + callee_share must equal total")
        object.__setattr__(self, "fields", dict(self.fields))


@dataclass(frozen=True, slots=True)
class PostLedger:
    """Append an entry to a 400 number's ledger (a call's charge, most often).

    Idempotent by (number, kind, ref): a replayed entry is not booked twice. The store keeps
    the balance and the usage counters in step with the ledger in the same transaction.
    `included_seconds` is what a call took from the month's included minutes. A call's
    entry is keyed by its call id (`ref`); `stored_id`: see above AddLeg.
    """

    entry: LedgerEntry
    included_seconds: int = 0
    stored_id: bool = False


@dataclass(frozen=True, slots=True)
class Rekeyed:
    """The store keyed the CDR of the session `call_id` by `stored_id` (a repeat of a
    uniqueid it already held): journaled ahead of the session's later ops, so that a replay
    by a later run, which remembers no repeat, sends them there too. Writes no row."""

    call_id: str
    stored_id: str


CdrOp = StartCall | AddLeg | FinishCall | PostLedger | Rekeyed


_FIELD_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(spec.name for spec in dataclasses.fields(cls)) for cls in (Leg, CDR)
}
_CHECKED_FIELDS: dict[type, tuple[tuple[str, Callable[[str, object], None]], ...]] = {
    cls: tuple((name, _FIELD_CHECKS[name]) for name in names if name in _FIELD_CHECKS)
    for cls, names in _FIELD_NAMES.items()
}
_MONEY_ORDER = tuple(sorted(_MONEY_FIELDS))
_CDR_SCALARS = tuple(name for name in _FIELD_NAMES[CDR] if name not in ("region", "legs"))


def leg_to_json(leg: Leg) -> dict[str, Any]:
    return {name: encode_value(getattr(leg, name)) for name in _FIELD_NAMES[Leg]}


def leg_from_json(data: Mapping[str, Any]) -> Leg:
    return Leg(**{name: decode_value(name, data[name]) for name in _FIELD_NAMES[Leg]})


def cdr_to_json(cdr: CDR) -> dict[str, Any]:
    data = {name: encode_value(getattr(cdr, name)) for name in _CDR_SCALARS}
    data["region"] = dataclasses.asdict(cdr.region)
    data["legs"] = [leg_to_json(leg) for leg in cdr.legs]
    return data


def cdr_from_json(data: Mapping[str, Any]) -> CDR:
    """A CDR from its JSON; fields a journal written by an older router lacks stay unset."""
    return CDR(
        **{name: decode_value(name, data.get(name)) for name in _CDR_SCALARS},
        region=CallerRegion(**data["region"]),
        legs=tuple(leg_from_json(leg) for leg in data["legs"]),
    )


def ledger_entry_to_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "number": entry.number,
        "at": entry.at.isoformat(),
        "amount": str(entry.amount),
        "kind": entry.kind.value,
        "ref": entry.ref,
        "note": entry.note,
    }


def ledger_entry_from_json(data: Mapping[str, Any]) -> LedgerEntry:
    return LedgerEntry(
        data["number"],
        datetime.fromisoformat(data["at"]),
        Decimal(data["amount"]),
        LedgerKind(data["kind"]),
        data["ref"],
        data["note"],
    )


def op_to_json(op: CdrOp) -> dict[str, Any]:
    match op:
        case StartCall(cdr):
            return {"op": "start", "cdr": cdr_to_json(cdr)}
        case AddLeg(call_id, leg, stored_id):
            data: dict[str, Any] = {"op": "add_leg", "call_id": call_id, "leg": leg_to_json(leg)}
        case FinishCall(call_id, values, stored_id):
            encoded = {name: encode_value(value) for name, value in values.items()}
            data = {"op": "finish", "call_id": call_id, "fields": encoded}
        case PostLedger(entry, included_seconds, stored_id):
            data = {
                "op": "ledger",
                "entry": ledger_entry_to_json(entry),
                "included_seconds": included_seconds,
            }
        case Rekeyed(call_id, stored):
            return {"op": "rekeyed", "call_id": call_id, "stored_id": stored}
        case _:
            raise TypeError(f"not a CDR operation: {op!r}")
    if stored_id:
        data["stored_id"] = True
    return data


def op_from_json(data: Mapping[str, Any]) -> CdrOp:
    stored = data.get("stored_id", False)
    match data["op"]:
        case "start":
            return StartCall(cdr_from_json(data["cdr"]))
        case "add_leg":
            return AddLeg(data["call_id"], leg_from_json(data["leg"]), stored)
        case "finish":
            values = {name: decode_value(name, raw) for name, raw in data["fields"].items()}
            return FinishCall(data["call_id"], values, stored)
        case "ledger":
            entry = ledger_entry_from_json(data["entry"])
            return PostLedger(entry, data["included_seconds"], stored)
        case "rekeyed":
            return Rekeyed(data["call_id"], data["stored_id"])
    raise ValueError(f"unknown CDR operation {data['op']!r}")
