"""The routing plan of one 400 number, as admins write it in config/plans/<number>.yaml.

These models are the single source of truth for a plan file: they validate it (every error
with its field path) and they generate config/schema/plan.schema.json, so editors and the
loader can never disagree. Limits cited in messages come from the 400 business rules.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dialplan.geo import canonical_city, canonical_province, locate
from dialplan.pin import HASH_PATTERN, MAX_PIN_DIGITS, MIN_PIN_DIGITS, pin_length
from dialplan.regions import cities_named
from dialplan.validation import IanaZone, worded

MAX_BUSY_FORWARDS = 2
MAX_NO_ANSWER_FORWARDS = 2
MAX_FORWARDS_PER_CALL = 3
DEFAULT_PIN_MAX_DIGITS = 6
"""pin.max_digits for a hash that does not record the PIN's length."""
DEFAULT_BUSY_STATUSES = ("BUSY", "CONGESTION", "CHANUNAVAIL")

_NUMBER = re.compile(r"^\+?[0-9]{3,20}$")
_PREFIX = re.compile(r"^(\+[0-9]{1,20}|[0-9]{3,20})$")
"""A caller-number prefix: 3 digits or more, or a country code of any length (+1, +44)."""
_TIME_RANGE = re.compile(r"^(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_RANGE = re.compile(r"^(?P<start>\d{4}-\d{2}-\d{2})\.\.(?P<end>\d{4}-\d{2}-\d{2})$")
_PROMPT = re.compile(r"^[A-Za-z0-9_\-/.]{1,120}$")
LANGUAGE_PATTERN = worded(
    r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$", "an Asterisk language such as zh, en or fr_FR"
)
"""An Asterisk language, the name of its sounds folder: en, zh, fr_FR."""
MENU_NAME_PATTERN = worded(
    r"^[A-Za-z0-9_-]{1,40}$", "a menu name: letters, digits, _ and -, at most 40"
)
MENU_KEYS = "0123456789*"
"""Keys a menu option may use; `#` ends an entry in GET DATA, so it cannot be an option."""
MAX_MENU_DEPTH = 3
"""A menu, its submenus and theirs: callers lost in deeper trees hang up."""
REPEAT = "repeat"
MINUTES_PER_DAY = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Strict(BaseModel):
    """Unknown keys are errors: a misspelt key must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _compact_number(
    value: Any, pattern: re.Pattern[str] = _NUMBER, what: str = "a phone number"
) -> str:
    """A phone number or prefix as written, without its spaces, dashes and parentheses."""
    if not isinstance(value, str):
        raise PydanticCustomError(
            "number_type",
            "write phone numbers as quoted strings "
            "(YAML reads 0531... as a number and drops the 0)",
        )
    compact = re.sub(r"[\s\-()]", "", value)
    if not pattern.match(compact):
        raise PydanticCustomError(
            "number_format", "{value} is not {what}", {"value": repr(value), "what": what}
        )
    return compact


def _normalised_number(value: Any) -> str:
    """A number normalised as callers are: 0531-8888 6666 -> 053188886666."""
    compact = _compact_number(value)
    return locate(compact).number or compact


def _listed_number(value: Any) -> str:
    """A listed caller's number, normalised as callers are.

    A number no caller ID normalises to (a fixed line without its area code, a digit too
    many or too few) is refused: it would never match a call, and a blacklist holding it
    would block nobody."""
    number = locate(_compact_number(value)).number
    if not number:
        raise PydanticCustomError(
            "listed_number",
            "{value} is no number a caller can have, so it would match no call: write a fixed "
            "line with its area code ('0531 8888 6666'), a mobile with its 11 digits, or a "
            "number abroad with its country code ('+852 2123 4567')",
            {"value": repr(value)},
        )
    return number


BOUND_KINDS = ("fixed", "mobile")
"""What a call may be put through to: real bound phones, fixed lines or mobiles."""


def _bound_number(value: Any) -> str:
    """A destination or forwarding number: a fixed line or a mobile, normalised as callers
    are. A 400 or 800 number, a short service code (110, 95588) or a number abroad is
    refused: a 400 number's calls go to real bound phones, and a 400 number (this plan's
    own or another) would bring the call back into the platform."""
    compact = _compact_number(value)
    found = locate(compact)
    if found.kind in BOUND_KINDS:
        return found.number
    number = found.number or compact
    if found.kind == "service" and number.startswith("400"):
        why = "a 400 number: the call would come back into the platform"
    elif found.kind == "service" and number.startswith("800"):
        why = "an 800 number: a service number, not a phone"
    elif found.kind == "service":
        why = "a service number (a short code such as 110 or 95588)"
    elif found.kind == "international":
        why = "a number abroad"
    else:
        why = "not a complete fixed line (area code first) or mobile number"
    raise PydanticCustomError(
        "bound_number",
        "{value} is {why}; calls are put through only to fixed lines or mobiles",
        {"value": repr(value), "why": why},
    )


_COUNTRY_CODE = "86"


def _caller_prefixes(value: Any) -> list[str]:
    """The national forms a caller-number prefix stands for, as callers are normalised.

    Callers from China are matched in national form (13905310001, 053188886666), so a
    prefix written with the country code, +86 or 0086, is written in national form too. A
    Chinese number written +86... is a fixed line (national form: 0, then the digits after
    +86) or a mobile or service number (national form: the digits after +86), so +86 531
    stands for both 0531... and 531..., exactly the callers whose +86 form starts so; a
    trunk 0 written after +86 (+86 0531) is dropped first. Other country codes are kept in
    E.164 form (+852..., 00852... -> +852...), as callers from abroad are. National
    prefixes are kept as written.
    """
    compact = _compact_number(
        value, _PREFIX, "a number prefix (3 digits or more, or + and a country code)"
    )
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if ("+" + _COUNTRY_CODE).startswith(compact) and len(compact) < 1 + len(_COUNTRY_CODE):
        raise PydanticCustomError(
            "prefix_format",
            "{value} begins China's country code (+86) as well as others': callers in China "
            "are matched in national form, so it would match only callers abroad; write the "
            "country codes meant (+81, +82, +852, ...)",
            {"value": repr(value)},
        )
    if not compact.startswith("+" + _COUNTRY_CODE):
        return [compact]
    rest = compact[1 + len(_COUNTRY_CODE) :].removeprefix("0")
    if not rest:
        raise PydanticCustomError(
            "prefix_format",
            "{value} names no digits after the country code: it would match every caller in China",
            {"value": repr(value)},
        )
    return ["0" + rest, rest]


PhoneNumber = Annotated[str, Field(json_schema_extra={"pattern": r"^\+?[0-9 ()\-]{3,30}$"})]
CallerPrefix = Annotated[
    str, Field(json_schema_extra={"pattern": r"^(\+[0-9 ()\-]{1,30}|[0-9 ()\-]{3,30})$"})
]


class NumberStatus(StrEnum):
    """Lifecycle states of a 400 number; only `active` connects calls."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    FROZEN = "frozen"
    ARREARS = "arrears"


def _province(name: str) -> str:
    """An entry of `provinces`, canonical."""
    province = canonical_province(name)
    if province is None:
        raise PydanticCustomError(
            "unknown_province", "{name} is not a province of China", {"name": repr(name)}
        )
    return province


def _city(name: str) -> str:
    """An entry of `cities`, canonical, or why it cannot be placed."""
    city = canonical_city(name)
    meant = sorted(cities_named(name))
    if city is None and len(meant) > 1:
        raise PydanticCustomError(
            "ambiguous_city",
            "{name} names several cities ({cities}): write the one meant in Chinese",
            {
                "name": repr(name),
                "cities": ", ".join(f"{city} in {province}" for province, city in meant),
            },
        )
    if city is None and canonical_province(name) is not None:
        raise PydanticCustomError(
            "province_as_city",
            "{name} is a province-level region, not a city: list it under provinces",
            {"name": repr(name)},
        )
    if city is None:
        raise PydanticCustomError(
            "unknown_city", "{name} is not a city known to the geocoder", {"name": repr(name)}
        )
    return city


def _area_code(code: str) -> str:
    if not re.fullmatch(r"0[1-9][0-9]{1,2}", code):
        raise PydanticCustomError(
            "area_code", "{code} is not an area code like '010' or '0531'", {"code": repr(code)}
        )
    return code


def _caller_prefix(value: Any) -> Any:
    """An entry of `prefixes`, checked alone so a problem names its line; the list's
    validator then puts the national forms it stands for in its place."""
    _caller_prefixes(value)
    return value


class CallerSet(Strict):
    """Callers by region, area code, number prefix or exact number (VIP lists, blacklists)."""

    # Each entry is checked by itself, so a problem is named at the entry's own line.

    provinces: list[Annotated[str, AfterValidator(_province)]] = Field(
        default_factory=list, description="e.g. 山东 or Shandong"
    )
    cities: list[Annotated[str, AfterValidator(_city)]] = Field(
        default_factory=list, description="e.g. 济南 or Jinan"
    )
    area_codes: list[Annotated[str, AfterValidator(_area_code)]] = Field(
        default_factory=list, description="e.g. '0531'"
    )
    prefixes: list[Annotated[CallerPrefix, BeforeValidator(_caller_prefix)]] = Field(
        default_factory=list,
        description="number beginnings: '139', '0531 8' or with the country code, '+86 139'; "
        "a country code alone ('+44') is every caller from that country",
    )
    numbers: list[Annotated[PhoneNumber, BeforeValidator(_listed_number)]] = Field(
        default_factory=list
    )

    @field_validator("prefixes")
    @classmethod
    def _national_forms(cls, values: list[str]) -> list[str]:
        prefixes: list[str] = []
        for value in values:
            prefixes += [p for p in _caller_prefixes(value) if p not in prefixes]
        return prefixes

    def is_empty(self) -> bool:
        return not (
            self.provinces or self.cities or self.area_codes or self.prefixes or self.numbers
        )


class Screening(Strict):
    """Allow only some regions (mode allow) or refuse some (mode deny)."""

    mode: Literal["allow", "deny"] = "deny"
    callers: CallerSet = Field(
        default_factory=CallerSet,
        validate_default=True,
        description="mode allow admits these callers only, so it must list some",
    )
    anonymous: Literal["allow", "reject"] | None = Field(
        None,
        description="what to do with caller IDs that cannot be dialled back: withheld, "
        "missing, or not a number; by default reject under mode allow (such a caller cannot "
        "be shown to come from a region it admits), allow under mode deny",
    )

    @property
    def anonymous_policy(self) -> Literal["allow", "reject"]:
        """`anonymous` as written, else what the mode implies: an allow-list admits only the
        callers it lists, and a caller ID that cannot be placed is not among them."""
        if self.anonymous is not None:
            return self.anonymous
        return "reject" if self.mode == "allow" else "allow"

    @field_validator("callers")
    @classmethod
    def _allow_lists_someone(cls, callers: CallerSet, info: ValidationInfo) -> CallerSet:
        if info.data.get("mode") == "allow" and callers.is_empty():
            raise PydanticCustomError(
                "screening_allow_empty",
                "mode allow admits only the callers listed here, and none is listed: list "
                "the provinces, cities, area codes, prefixes or numbers to admit, or use "
                "mode deny",
            )
        return callers


class Pin(Strict):
    """A dedicated password every caller (or the callers of some rules) must enter."""

    hash: str = Field(description="salted hash from `hotline400 pin-hash`; never the PIN itself")
    applies_to: Literal["all", "rules"] = Field(
        "all", description="all callers, or only rules with require_pin: true"
    )
    attempts: int = Field(3, ge=1, le=5)
    digit_timeout: int = Field(5, ge=1, le=30, description="seconds to wait for the digits")
    max_digits: int = Field(
        DEFAULT_PIN_MAX_DIGITS,
        ge=MIN_PIN_DIGITS,
        le=MAX_PIN_DIGITS,
        validate_default=True,
        description="digits read before the entry ends (the caller may end it sooner with #); "
        "at least the PIN's length. Default: the PIN's length, which hashes from "
        f"`hotline400 pin-hash` record; {DEFAULT_PIN_MAX_DIGITS} for older hashes without it",
    )
    prompt: str = "hotline400/enter-pin"
    retry_prompt: str = "hotline400/pin-wrong"
    failed_prompt: str = "hotline400/pin-failed"

    @model_validator(mode="before")
    @classmethod
    def _max_digits_of_the_pin(cls, data: Any) -> Any:
        """Unset, max_digits is the length the hash records: the entry ends as the last
        digit of the PIN is pressed."""
        if isinstance(data, dict) and "max_digits" not in data:
            length = pin_length(data["hash"]) if isinstance(data.get("hash"), str) else None
            if length is not None and MIN_PIN_DIGITS <= length <= MAX_PIN_DIGITS:
                return {**data, "max_digits": length}
        return data

    @field_validator("hash")
    @classmethod
    def _is_hash(cls, value: str) -> str:
        if not HASH_PATTERN.match(value):
            raise PydanticCustomError(
                "pin_clear",
                "not a salted PIN hash: store the output of `hotline400 pin-hash`, never the PIN",
            )
        length = pin_length(value)
        if length is not None and not MIN_PIN_DIGITS <= length <= MAX_PIN_DIGITS:
            raise PydanticCustomError(
                "pin_length",
                "records a PIN of {length} digits; a PIN is 4 to 12 digits: hash it again "
                "with `hotline400 pin-hash`",
                {"length": length},
            )
        return value

    @field_validator("max_digits")
    @classmethod
    def _pin_fits(cls, value: int, info: ValidationInfo) -> int:
        """Callers can never enter a PIN longer than max_digits: the entry stops there."""
        stored = info.data.get("hash")
        length = pin_length(stored) if isinstance(stored, str) else None
        if length is not None and value < length:
            raise PydanticCustomError(
                "pin_max_digits",
                "{value} is shorter than the PIN, which has {length} digits (pin.hash): the "
                "entry would stop before its last digit and no caller could ever get through; "
                "set max_digits to {length} or more, or leave it out",
                {"value": value, "length": length},
            )
        return value

    @field_validator("prompt", "retry_prompt", "failed_prompt")
    @classmethod
    def _prompt_name(cls, value: str) -> str:
        return _check_prompt(value)


def _check_prompt(value: str) -> str:
    """A sound of the sounds folder. Asterisk plays a name with a leading / or a `..` from
    anywhere on the server, another number's recorded conversations too, so a plan (saved
    by a subscriber from the console) names its prompts under the folder only."""
    if value.startswith("/") or ".." in value.split("/"):  # the graver fault said first
        raise PydanticCustomError(
            "prompt_name",
            "{value} is not a sound of the sounds folder: no leading / and no ..",
            {"value": repr(value)},
        )
    if not _PROMPT.match(value):
        raise PydanticCustomError(
            "prompt_name",
            "{value} is not a sound file name (letters, digits, _-/., at most 120)",
            {"value": repr(value)},
        )
    return value


class Caps(Strict):
    """Cost control set by the business; once reached, calls are no longer connected."""

    monthly_cost: Decimal | None = Field(None, ge=0, decimal_places=2)
    monthly_calls: int | None = Field(
        None, ge=0, description="the month's incoming calls (or answered ones, see below)"
    )
    monthly_calls_counting: Literal["incoming", "answered"] = Field(
        "incoming",
        description="what monthly_calls counts: every incoming call put through to the "
        "subscriber's phones, answered or not (the seed's total of incoming calls), or only "
        "the answered ones",
    )
    daily_cost: Decimal | None = Field(None, ge=0, decimal_places=2)

    @property
    def limited(self) -> bool:
        """Some cap is set: its counters must be read before each call."""
        return not (
            self.monthly_cost is None and self.monthly_calls is None and self.daily_cost is None
        )


class Forwarding(Strict):
    """Numbers registered beforehand for busy and no-answer forwarding."""

    on_busy: list[PhoneNumber] = Field(default_factory=list)
    on_no_answer: list[PhoneNumber] = Field(default_factory=list)
    max_forwards: int = Field(MAX_FORWARDS_PER_CALL, ge=0)
    busy_statuses: list[Literal["BUSY", "CONGESTION", "CHANUNAVAIL"]] = Field(
        default_factory=lambda: list(DEFAULT_BUSY_STATUSES),
        description="dial results that count as busy",
    )

    @field_validator("on_busy", "on_no_answer", mode="before")
    @classmethod
    def _normalise(cls, values: Any) -> Any:
        if not isinstance(values, list):
            return values
        return [_bound_number(value) for value in values]

    @field_validator("on_busy")
    @classmethod
    def _busy_limit(cls, numbers: list[str]) -> list[str]:
        if len(numbers) > MAX_BUSY_FORWARDS:
            raise PydanticCustomError(
                "forward_limit",
                "{count} busy forwarding numbers, at most 2 are allowed "
                "(a subscriber registers 2 for busy and 2 for no-answer)",
                {"count": len(numbers)},
            )
        return numbers

    @field_validator("on_no_answer")
    @classmethod
    def _no_answer_limit(cls, numbers: list[str]) -> list[str]:
        if len(numbers) > MAX_NO_ANSWER_FORWARDS:
            raise PydanticCustomError(
                "forward_limit",
                "{count} no-answer forwarding numbers, at most 2 are allowed "
                "(a subscriber registers 2 for busy and 2 for no-answer)",
                {"count": len(numbers)},
            )
        return numbers

    @field_validator("max_forwards")
    @classmethod
    def _forwards_per_call(cls, value: int) -> int:
        if value > MAX_FORWARDS_PER_CALL:
            raise PydanticCustomError(
                "forward_limit",
                "{value} forwards per call, at most 3 are allowed in one call",
                {"value": repr(value)},
            )
        return value


class Destination(Strict):
    """A real phone a call can be forwarded to."""

    number: PhoneNumber
    ring_timeout: int | None = Field(
        None, ge=5, le=120, description="seconds; plan default if unset"
    )
    down: bool = Field(
        False,
        description=(
            "taken out of service: skipped, its share spread, and skipped as a forward too "
            "(the chain moves to the next forwarding number)"
        ),
    )
    max_calls: int | None = Field(
        None,
        ge=1,
        description="concurrent calls it takes; at the limit it counts as busy without ringing",
    )

    @field_validator("number", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> str:
        return _bound_number(value)


class SplitShare(Destination):
    percent: int = Field(ge=1, le=100, description="integer percentage, 1% precision")


class TimeWindow(BaseModel):
    """A daily window in minutes after midnight; end <= start means it runs across midnight
    (22:00-06:00). An end of 24:00 (1440) is the end of the day: 00:00-24:00 is all day. So
    is an end of 23:59, the last minute of the day as the business writes it (00:00-23:59)."""

    model_config = ConfigDict(frozen=True)
    start: int = Field(ge=0, lt=MINUTES_PER_DAY)
    end: int = Field(ge=0, le=MINUTES_PER_DAY)

    def __str__(self) -> str:
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"


class DateRange(BaseModel):
    model_config = ConfigDict(frozen=True)
    first: date
    last: date

    def __str__(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}..{self.last}"


def _parse_clock(text: str, *, end: bool) -> int:
    """'09:30' -> 570 minutes after midnight; at the end of a window '24:00' and '23:59' are
    the end of the day (1440): a window written up to 23:59 takes in that last minute too."""
    hours, minutes = (int(part) for part in text.split(":"))
    if end and (hours, minutes) in ((24, 0), (23, 59)):
        return MINUTES_PER_DAY
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ValueError(text)
    return hours * 60 + minutes


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_window(text: str) -> TimeWindow:
    match = _TIME_RANGE.match(text)
    if match is None:
        raise ValueError(text)
    start = _parse_clock(match["start"], end=False)
    return TimeWindow(start=start, end=_parse_clock(match["end"], end=True))


class When(Strict):
    """Conditions that must all hold; any condition left out holds for every call."""

    callers: CallerSet = Field(default_factory=CallerSet)
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=list
    )
    time: list[str] = Field(
        default_factory=list,
        description="HH:MM-HH:MM windows; 22:00-06:00 runs across midnight, an end of 24:00 "
        "or 23:59 is the end of the day",
        json_schema_extra={"items": {"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}},
    )
    dates: list[str | date] = Field(
        default_factory=list, description="YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD"
    )
    calendar: Literal["cn_workday", "cn_restday", "cn_holiday"] | None = Field(
        None, description="official PRC calendar, adjusted working days included"
    )

    @field_validator("time")
    @classmethod
    def _windows(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                window = _parse_window(value)
            except ValueError:
                raise PydanticCustomError(
                    "time_window",
                    "{value} is not a window like '09:00-18:00'",
                    {"value": repr(value)},
                ) from None
            if window.start == window.end:
                raise PydanticCustomError(
                    "time_window",
                    "{value} is empty: start and end are equal (00:00-24:00 is the whole day)",
                    {"value": repr(value)},
                )
        return values

    @field_validator("dates")
    @classmethod
    def _date_ranges(cls, values: list[str | date]) -> list[str | date]:
        checked: list[str | date] = []
        for value in values:
            if isinstance(value, date):
                checked.append(value)
                continue
            if _DATE.match(value):  # quoted: '2026-10-01' is the date an unquoted one is
                try:
                    checked.append(date.fromisoformat(value))
                except ValueError:
                    raise PydanticCustomError(
                        "date_range", "{value} is not a date", {"value": repr(value)}
                    ) from None
                continue
            checked.append(value)
            match = _DATE_RANGE.match(value)
            try:
                if match is None:
                    raise ValueError(value)
                first, last = date.fromisoformat(match["start"]), date.fromisoformat(match["end"])
            except ValueError:
                raise PydanticCustomError(
                    "date_range",
                    "{value} is not a date or a range like 2026-10-01..2026-10-08",
                    {"value": repr(value)},
                ) from None
            if last < first:
                raise PydanticCustomError(
                    "date_range", "{value} ends before it starts", {"value": repr(value)}
                )
        return checked

    def windows(self) -> list[TimeWindow]:
        return [_parse_window(value) for value in self.time]

    def date_ranges(self) -> list[DateRange]:
        result = []
        for value in self.dates:
            if isinstance(value, date):
                result.append(DateRange(first=value, last=value))
                continue
            first, last = value.split("..")
            result.append(DateRange(first=date.fromisoformat(first), last=date.fromisoformat(last)))
        return result


class Route(Strict):
    """Where a call goes: one destination, a percentage split, or a rejection."""

    target: Destination | PhoneNumber | None = None
    split: list[SplitShare] | None = None
    reject: Literal["closed", "blocked"] | None = Field(
        None, description="refuse the call (e.g. out of hours with no route)"
    )
    announcement: str | None = Field(None, description="prompt played before a rejection")
    ring_timeout: int | None = Field(None, ge=5, le=120)
    require_pin: bool = False
    forwarding: Forwarding | None = Field(None, description="overrides the plan's forwarding")
    menu: str | None = Field(
        None,
        pattern=MENU_NAME_PATTERN,
        description="play this menu of the plan's menus: the caller's key chooses the route",
    )
    record: bool = Field(
        False, description="record this route's calls when the plan's recording applies to rules"
    )
    survey: bool = Field(
        False,
        description="ask this route's callers for a score when the plan's survey applies to rules",
    )

    ACTIONS: ClassVar[tuple[str, ...]] = ("target", "split", "reject", "menu")
    """The fields of which a route gives exactly one."""

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        return Destination(number=_bound_number(value))

    @field_validator("split")
    @classmethod
    def _split_sums_to_100(cls, shares: list[SplitShare] | None) -> list[SplitShare] | None:
        if shares is None:
            return None
        total = sum(share.percent for share in shares)
        if total != 100:
            raise PydanticCustomError(
                "split_sum", "percentages sum to {total}, must be 100", {"total": total}
            )
        numbers = [share.number for share in shares]
        if len(set(numbers)) != len(numbers):
            raise PydanticCustomError("split_duplicate", "a destination appears twice in the split")
        return shares

    @field_validator("announcement")
    @classmethod
    def _announcement(cls, value: str | None) -> str | None:
        return None if value is None else _check_prompt(value)

    @model_validator(mode="after")
    def _one_action(self) -> Route:
        actions = [name for name in self.ACTIONS if getattr(self, name) is not None]
        if len(actions) != 1:
            raise PydanticCustomError(
                "route_action",
                "give exactly one of {names} (found {found})",
                {"names": _one_of(self.ACTIONS), "found": ", ".join(actions) or "none"},
            )
        return self

    def destinations(self) -> list[Destination]:
        if isinstance(self.target, Destination):
            return [self.target]
        return list(self.split or [])


class CrmEvents(Strict):
    """Call events POSTed to the subscriber's CRM (screen pop), signed with HMAC-SHA256.

    The key is read from the router's environment, never written in the plan: plans are
    versioned in the store and shown in the console."""

    url: str = Field(
        pattern=worded(r"^https?://\S+$", "an http:// or https:// address without spaces"),
        description="the CRM's receiving URL",
    )
    secret_env: str = Field(
        pattern=worded(
            r"^[A-Z][A-Z0-9_]{0,63}$",
            "an environment variable name: a capital letter, then capitals, digits or _",
        ),
        description="environment variable of the router holding the HMAC-SHA256 key",
    )
    events: list[Literal["arrival", "answer", "end"]] = Field(
        default_factory=lambda: ["arrival", "answer", "end"],
        min_length=1,
        description="arrival (caller, region, rule), answer (destination), end (the CDR)",
    )


def _mobile(value: Any) -> str:
    """A number of `sms_to`, normalised as callers are: it must be a mobile."""
    number = _normalised_number(value)
    if locate(number).kind != "mobile":
        raise PydanticCustomError(
            "sms_to", "{value} is not a mobile number", {"value": repr(number)}
        )
    return number


class Notifications(Strict):
    """Text messages to the subscriber's own mobiles."""

    sms_to: list[Annotated[PhoneNumber, BeforeValidator(_mobile)]] = Field(
        min_length=1, max_length=3, description="the subscriber's mobiles (at most 3)"
    )
    missed_calls: bool = Field(
        True,
        description="who called, when and from where, for calls that reached the subscriber's "
        "lines unanswered: rang out, busy, every forward failed, or the caller hung up while "
        "it rang or was held in the queue, or every destination it could take was marked "
        "down (no_route, named in the text); not for a caller who gave up in a menu, at the "
        "PIN prompt or during the recording notice, nor for one refused (screening, "
        "blacklist, hours, caps, balance, a failed PIN)",
    )
    low_balance: bool = Field(True, description="the prepaid balance fell below its warning")


class HoldQueue(Strict):
    """Callers held unanswered, hearing ringing, while every destination of their route is
    at its max_calls; VIP callers are served first, then the others in arrival order."""

    max_wait: int = Field(60, ge=5, le=600, description="seconds a caller is held at most")
    vip: CallerSet = Field(default_factory=CallerSet, description="callers served first")
    announcement: str | None = Field(
        None,
        description="played (unanswered) when the wait runs out; without it the call takes "
        "the route's busy forwarding",
    )

    @field_validator("announcement")
    @classmethod
    def _announcement(cls, value: str | None) -> str | None:
        return None if value is None else _check_prompt(value)


class Recording(Strict):
    """Calls recorded after the caller is told so: the notice plays as early media (the call
    stays unanswered), then Asterisk records once a destination answers. Recorded only
    while the number's account has the `recording` feature switched on (tariffs.yaml)."""

    notice: str = Field(
        "hotline400/recording-notice", description="prompt telling the caller the call is recorded"
    )
    applies_to: Literal["all", "rules"] = Field(
        "all", description="every call put through, or only routes with record: true"
    )

    @field_validator("notice")
    @classmethod
    def _notice(cls, value: str) -> str:
        return _check_prompt(value)


class Survey(Strict):
    """A satisfaction score asked after an answered call: Dial's `g` option gives the caller
    back to the router when the destination hangs up, and one key from 1 to 5 is the score.
    Asked only while the number's account has the `satisfaction_survey` feature switched on
    (tariffs.yaml); calls nobody answered are never surveyed."""

    prompt: str = Field(
        "hotline400/survey", description="prompt asking for a score from 1 (poor) to 5 (good)"
    )
    timeout: int = Field(6, ge=1, le=30, description="seconds to wait for a key after the prompt")
    retries: int = Field(
        1, ge=0, le=3, description="asks again after no key or a key other than 1-5"
    )
    invalid_prompt: str | None = Field(
        None, description="played before asking again after a key other than 1-5"
    )
    thanks: str | None = Field(None, description="played once a score is given")
    applies_to: Literal["all", "rules"] = Field(
        "all", description="every answered call, or only routes with survey: true"
    )

    @field_validator("prompt", "invalid_prompt", "thanks")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return None if value is None else _check_prompt(value)


def _one_of(names: tuple[str, ...]) -> str:
    return f"{', '.join(names[:-1])} or {names[-1]}"


class Rule(Route):
    name: str = Field(min_length=1, max_length=64)
    when: When = Field(default_factory=When)


class MenuOption(Route):
    """What a key of a menu does: a route, a submenu (`menu:`), or `repeat` (the menu again).

    Written `"9": repeat` in a plan; `language:` switches the caller's prompts (the submenu's,
    the PIN's, the survey's) to that language from then on.
    """

    repeat: Literal[True] | None = Field(None, description="play the menu again")
    language: str | None = Field(
        None, pattern=LANGUAGE_PATTERN, description="prompt language from this key on"
    )

    ACTIONS: ClassVar[tuple[str, ...]] = (*Route.ACTIONS, REPEAT)


class Menu(Strict):
    """An IVR menu: a prompt, then one key chooses an option. No key within `timeout`, or a
    key without an option, plays the menu again up to `retries` times, then `default`."""

    prompt: str = Field(description="the sound file listing the options")
    options: dict[str, MenuOption] = Field(
        min_length=1,
        description="key (0-9 or *) -> a route, `menu: NAME`, or repeat",
        json_schema_extra={"propertyNames": {"pattern": r"^[0-9*]$"}},
    )
    timeout: int = Field(5, ge=1, le=30, description="seconds to wait for a key after the prompt")
    retries: int = Field(
        2, ge=0, le=5, description="plays again after no key or a key without an option"
    )
    invalid_prompt: str | None = Field(
        None, description="played before the menu again after a key without an option"
    )
    default: MenuOption = Field(description="the route when the retries are spent; mandatory")

    @field_validator("options", mode="before")
    @classmethod
    def _keys(cls, options: Any) -> Any:
        """YAML reads `1:` as a number and `"9": repeat` as text: both made what they mean."""
        if not isinstance(options, dict):
            return options
        keyed = {}
        for key, option in options.items():
            text = str(key)
            if len(text) != 1 or text not in MENU_KEYS:
                raise PydanticCustomError(
                    "menu_key",
                    "{key} is not a key a caller can press for an option (0-9 or *)",
                    {"key": repr(key)},
                )
            keyed[text] = {REPEAT: True} if option == REPEAT else option
        return keyed

    @field_validator("prompt", "invalid_prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        return None if value is None else _check_prompt(value)

    @field_validator("default", mode="before")
    @classmethod
    def _default_moves_on(cls, option: Any) -> Any:
        if option == REPEAT or (isinstance(option, dict) and option.get(REPEAT)):
            raise PydanticCustomError(
                "menu_default", "the default ends the retries: a route or a menu, not repeat"
            )
        return option

    def submenus(self) -> list[str]:
        """The menus this one leads to, options first, then the default."""
        moves = [*self.options.values(), self.default]
        return [option.menu for option in moves if option.menu is not None]


class Plan(Strict):
    """Everything that decides what happens to a call to one 400 number."""

    number: str = Field(description="the 400 number, 10 digits", pattern=r"^400[0-9]{7}$")
    name: str = Field(min_length=1, max_length=120, description="the subscriber")
    subscriber: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="the subscriber this plan routes for, as the numbers' inventory names it "
        "(numbers apply --account); while another holds the number the plan routes none of "
        "its calls (a past holder's plan)",
    )
    status: NumberStatus = NumberStatus.ACTIVE
    home_area_code: str | None = Field(
        None, pattern=r"^0[1-9][0-9]{1,2}$", description="the subscriber's area code, for rating"
    )
    timezone: IanaZone = "Asia/Shanghai"
    language: str | None = Field(
        None,
        pattern=LANGUAGE_PATTERN,
        description="language of the plan's prompts (CHANNEL(language)); unset keeps the "
        "channel's own",
    )
    ring_timeout: int = Field(20, ge=5, le=120, description="default seconds a target rings")
    announcements: dict[
        Literal["blocked", "blacklisted", "anonymous", "capped", "suspended", "arrears", "closed"],
        str,
    ] = Field(default_factory=dict, description="prompt played before each kind of rejection")
    screening: Screening = Field(default_factory=Screening)
    blacklist: CallerSet = Field(default_factory=CallerSet)
    pin: Pin | None = None
    caps: Caps = Field(default_factory=Caps)
    forwarding: Forwarding = Field(default_factory=Forwarding)
    menus: dict[str, Menu] = Field(
        default_factory=dict,
        description="IVR menus by name, played by routes with `menu: NAME`",
        json_schema_extra={"propertyNames": {"pattern": MENU_NAME_PATTERN}},
    )
    rules: list[Rule] = Field(default_factory=list, description="first match wins")
    default: Route = Field(description="the route when no rule matches; mandatory")
    crm: CrmEvents | None = Field(None, description="call events to the subscriber's CRM")
    notifications: Notifications | None = Field(None, description="SMS to the subscriber")
    queue: HoldQueue | None = Field(
        None, description="hold callers while every destination of their route is at max_calls"
    )
    recording: Recording | None = Field(
        None, description="record calls, after a notice the caller hears first"
    )
    survey: Survey | None = Field(
        None, description="ask callers for a satisfaction score after an answered call"
    )

    @field_validator("number", mode="before")
    @classmethod
    def _number_is_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("announcements")
    @classmethod
    def _announcements(cls, prompts: dict[str, str]) -> dict[str, str]:
        for prompt in prompts.values():
            _check_prompt(prompt)
        return prompts

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def call_limits(self) -> dict[str, int]:
        """Concurrent-call limits by destination number, as the plan's routes set them."""
        return {
            destination.number: destination.max_calls
            for _, route in self.routes()
            for destination in route.destinations()
            if destination.max_calls is not None
        }

    def down_numbers(self) -> frozenset[str]:
        """Every number a destination of the plan marks `down`: out of service in every
        role, as a forward too."""
        return frozenset(
            destination.number
            for _, route in self.routes()
            for destination in route.destinations()
            if destination.down
        )

    def down_forwards(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Forwarding numbers (the plan's or a route's own) that the plan marks down, with
        their field path: skipped by every call, never dialled."""
        down = self.down_numbers()
        found: list[tuple[tuple[str | int, ...], Forwarding]] = [(("forwarding",), self.forwarding)]
        found += [
            ((*path, "forwarding"), route.forwarding)
            for path, route in self.routes()
            if route.forwarding is not None
        ]
        return [
            ((*path, kind, index), number)
            for path, forwarding in found
            for kind in ("on_busy", "on_no_answer")
            for index, number in enumerate(getattr(forwarding, kind))
            if number in down
        ]

    def routes(self) -> list[tuple[tuple[str | int, ...], Route]]:
        """Every route with its field path, rules first, then the menus' options and
        defaults, for checks that span routes."""
        paths: list[tuple[tuple[str | int, ...], Route]] = [
            (("rules", index), rule) for index, rule in enumerate(self.rules)
        ]
        paths.append((("default",), self.default))
        for name, menu in self.menus.items():
            paths += [(("menus", name, "options", key), opt) for key, opt in menu.options.items()]
            paths.append((("menus", name, "default"), menu.default))
        return paths

    def languages(self) -> list[str]:
        """The prompt languages the plan's calls can use: its own (or Asterisk's default,
        en) and every menu option's."""
        found = [self.language or "en"]
        for _, route in self.routes():
            language = getattr(route, "language", None)
            if language is not None and language not in found:
                found.append(language)
        return found

    def prompts(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every sound file the plan plays, with its field path."""
        found: list[tuple[tuple[str | int, ...], str]] = [
            (("announcements", kind), prompt) for kind, prompt in self.announcements.items()
        ]
        if self.pin is not None:
            for name in ("prompt", "retry_prompt", "failed_prompt"):
                found.append((("pin", name), getattr(self.pin, name)))
        if self.recording is not None:
            found.append((("recording", "notice"), self.recording.notice))
        if self.survey is not None:
            for name in ("prompt", "invalid_prompt", "thanks"):
                if getattr(self.survey, name) is not None:
                    found.append((("survey", name), getattr(self.survey, name)))
        for name, menu in self.menus.items():
            found.append((("menus", name, "prompt"), menu.prompt))
            if menu.invalid_prompt is not None:
                found.append((("menus", name, "invalid_prompt"), menu.invalid_prompt))
        for path, route in self.routes():
            if route.announcement is not None:
                found.append(((*path, "announcement"), route.announcement))
        if self.queue is not None and self.queue.announcement is not None:
            found.append((("queue", "announcement"), self.queue.announcement))
        return found
