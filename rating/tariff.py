"""The tariffs of config/tariffs.yaml, as admins write them.

What callers pay for their own local call (by caller kind), the packages 400 subscribers
buy (usage rates, time-of-day periods, included minutes, rent, minimum monthly
consumption, how a call's cost is shared), the fees of value-added features, and the
account of each 400 number. Every figure is a setting of this file; the models only check
its shape. These models validate the file (each error with its field path) and generate
config/schema/tariffs.schema.json, so editors and the loader never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from dialplan.validation import IanaZone
from rating.model_base import Strict
from rating.money import ZERO, Money, to_fen
from rating.periods import WEEKDAYS, PeriodClock, parse_window
from rating.rates import Rate

DEFAULT_TIMEZONE = "Asia/Shanghai"
FEATURE_NAMES = {
    "ivr": "IVR menu",
    "recording": "call recording",
    "satisfaction_survey": "satisfaction survey",
    "screen_pop": "CRM screen pop",
    "blacklist": "caller blacklist",
    "vip": "VIP callers first",
}
"""The value-added features as subscribers call them; tariffs.yaml names them by key."""
DEFAULT_LOW_BALANCE_WARNING = Decimal("50.00")
_400_NUMBER = re.compile(r"^400[0-9]{7}$")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class CallerTariffs(Strict):
    """What a caller pays for their own local call, wherever they are in China."""

    fixed: Rate = Field(description="callers on fixed lines")
    mobile: Rate = Field(description="mobile callers: their local rate")
    other: Rate = Field(description="international, service and unknown callers")

    def for_kind(self, caller_kind: str) -> Rate:
        if caller_kind == "fixed":
            return self.fixed
        if caller_kind == "mobile":
            return self.mobile
        return self.other


class Sharing(Strict):
    """How the cost of a call is shared; the total is the same either way.

    caller_pays: local_charge -> the caller pays their own local-call charge and the
    subscriber the package charge; caller_percent: N -> the total of both is split N% to
    the caller and the rest to the subscriber.
    """

    caller_pays: Literal["local_charge"] | None = None
    caller_percent: int | None = Field(None, ge=0, le=100)

    @model_validator(mode="after")
    def _one_rule(self) -> Sharing:
        if (self.caller_pays is None) == (self.caller_percent is None):
            raise PydanticCustomError(
                "sharing_rule",
                "give either caller_pays: local_charge or caller_percent: N (0-100)",
            )
        return self


def _default_sharing() -> Sharing:
    return Sharing(caller_pays="local_charge")


class Period(Strict):
    """Rates in force at some times of day (and days of week), e.g. off-peak at night.

    A period gives nationwide (for every call) or local and/or long_distance; a kind of call
    the period does not price keeps the package's standard rate.
    """

    name: str = Field(min_length=1, max_length=40, description="shown in rate descriptions")
    time: list[str] = Field(
        min_length=1,
        description="HH:MM-HH:MM windows; 22:00-07:00 runs across midnight",
        json_schema_extra={"items": {"type": "string", "pattern": r"^\d{2}:\d{2}-\d{2}:\d{2}$"}},
    )
    days: list[Weekday] = Field(
        default_factory=list, description="days a window starts on; every day if left out"
    )
    nationwide: Rate | None = None
    local: Rate | None = None
    long_distance: Rate | None = None

    @field_validator("time")
    @classmethod
    def _windows(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                parse_window(value)
            except ValueError:
                raise PydanticCustomError(
                    "time_window",
                    "{value} is not a window like '22:00-07:00'",
                    {"value": repr(value)},
                ) from None
        return values

    @model_validator(mode="after")
    def _priced(self) -> Period:
        split = self.local is not None or self.long_distance is not None
        if (self.nationwide is not None) == split:
            raise PydanticCustomError(
                "period_rates",
                "give nationwide, or local and/or long_distance (found {found})",
                {"found": _given(self, ("nationwide", "local", "long_distance"))},
            )
        return self

    @cached_property
    def clock(self) -> PeriodClock:
        return PeriodClock(
            tuple(parse_window(value) for value in self.time),
            frozenset(WEEKDAYS.index(day) for day in self.days),
        )


class PriceChange(Strict):
    """New prices of a package from a day on, as announced to its subscribers.

    Only what it gives changes; nationwide replaces local and long_distance, and either of
    those replaces nationwide. Calls answered from `effective` (00:00 in the billing time
    zone) are priced by it; a change that raises a price must take effect at least the
    tariffs' `price_rise_notice_days` after `announced`.
    """

    announced: date = Field(description="the day the subscribers were told")
    effective: date = Field(description="the first day of the new prices")
    monthly_rent: Money | None = None
    included_minutes: int | None = Field(None, ge=0)
    nationwide: Rate | None = None
    local: Rate | None = None
    long_distance: Rate | None = None
    periods: list[Period] | None = Field(None, description="replace the time-of-day rates")

    @model_validator(mode="after")
    def _dated(self) -> PriceChange:
        if self.effective < self.announced:
            raise PydanticCustomError(
                "change_dates",
                "effective {effective} is before announced {announced}",
                {"effective": str(self.effective), "announced": str(self.announced)},
            )
        return self

    def replacing(self) -> dict[str, Any]:
        """The package fields this change sets."""
        given = {
            name: getattr(self, name)
            for name in ("monthly_rent", "included_minutes", "local", "long_distance", "periods")
            if getattr(self, name) is not None
        }
        if self.nationwide is not None:
            return {**given, "nationwide": self.nationwide, "local": None, "long_distance": None}
        if "local" in given or "long_distance" in given:
            given["nationwide"] = None
        return given


class PrepaidTier(Strict):
    """A lower rate bought with a larger prepayment: every usage rate of the package less
    `discount_percent`, rounded half-up to the fen, for accounts prepaying `prepayment`."""

    prepayment: Money = Field(gt=0, description="the account's agreed prepayment, at least")
    discount_percent: int = Field(ge=1, le=99)


def _kept(tier: PrepaidTier) -> Decimal:
    """The part of each rate a tier leaves: 0.90 for 10% off."""
    return Decimal(100 - tier.discount_percent) / 100


def _discounted(rate: Rate | None, keep: Decimal) -> Rate | None:
    if rate is None:
        return None
    return Rate(
        first_seconds=rate.first_seconds,
        first_charge=to_fen(rate.first_charge * keep),
        per_seconds=rate.per_seconds,
        charge=to_fen(rate.charge * keep),
    )


class Package(Strict):
    """What a 400 subscriber buys: usage rates, rent, included minutes, minimum, sharing."""

    monthly_rent: Money = ZERO
    included_minutes: int = Field(0, ge=0, description="free minutes each month")
    nationwide: Rate | None = Field(None, description="one rate wherever the call is answered")
    local: Rate | None = Field(None, description="answered in the subscriber's home area")
    long_distance: Rate | None = Field(None, description="answered outside the home area")
    periods: list[Period] = Field(
        default_factory=list, description="time-of-day rates; the first open one wins"
    )
    minimum_monthly: Money = Field(
        ZERO,
        description="minimum monthly consumption of its numbers, 0 for none; a number's "
        "account may agree its own",
    )
    sharing: Sharing = Field(default_factory=_default_sharing)
    changes: list[PriceChange] = Field(
        default_factory=list,
        description="announced price changes, each in force from its effective day, in order",
    )
    prepaid_tiers: list[PrepaidTier] = Field(
        default_factory=list,
        description="lower rates for larger prepayments, by growing prepayment and discount",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Package:
        _check_rates(self, "")
        for before, change in zip(self.changes, self.changes[1:], strict=False):
            if change.effective <= before.effective:
                raise PydanticCustomError(
                    "change_order",
                    "changes go in order of their effective days, one a day "
                    "({effective} follows {before})",
                    {"effective": str(change.effective), "before": str(before.effective)},
                )
        for change in self.changes:
            _check_rates(self.on(change.effective), f" from {change.effective}")
        for lower, higher in zip(self.prepaid_tiers, self.prepaid_tiers[1:], strict=False):
            if (
                higher.prepayment <= lower.prepayment
                or higher.discount_percent <= lower.discount_percent
            ):
                raise PydanticCustomError(
                    "tier_order",
                    "a larger prepayment buys a lower rate: tiers go by growing prepayment "
                    "and discount ({higher} after {lower})",
                    {
                        "higher": f"{higher.prepayment}/{higher.discount_percent}%",
                        "lower": f"{lower.prepayment}/{lower.discount_percent}%",
                    },
                )
        _check_tiers_lower_rates(self)
        return self

    def tier_of(self, prepayment: Decimal) -> PrepaidTier | None:
        """The largest tier `prepayment` reaches, None below the first."""
        reached = [tier for tier in self.prepaid_tiers if tier.prepayment <= prepayment]
        return reached[-1] if reached else None

    def for_prepayment(self, prepayment: Decimal) -> Package:
        """The package with the rates its tier for `prepayment` gives (itself below them)."""
        tier = self.tier_of(prepayment)
        if tier is None:
            return self
        keep = _kept(tier)
        periods = [
            period.model_copy(
                update={
                    name: _discounted(getattr(period, name), keep)
                    for name in ("nationwide", "local", "long_distance")
                }
            )
            for period in self.periods
        ]
        update: dict[str, Any] = {
            name: _discounted(getattr(self, name), keep)
            for name in ("nationwide", "local", "long_distance")
        }
        return self.model_copy(update={**update, "periods": periods})

    def on(self, day: date) -> Package:
        """The package as in force on `day`: every change effective by then applied."""
        update: dict[str, Any] = {}
        for change in self.changes:
            if change.effective > day:
                break
            update.update(change.replacing())
        return self.model_copy(update=update) if update else self

    def change_on(self, day: date) -> PriceChange | None:
        """The latest change in force on `day`, None before the first."""
        in_force = [change for change in self.changes if change.effective <= day]
        return in_force[-1] if in_force else None

    @property
    def ever_includes_minutes(self) -> bool:
        """Whether the package, as it is or after any of its changes, includes free minutes:
        only then does pricing a call need the minutes its month has used."""
        return self.included_minutes > 0 or any(change.included_minutes for change in self.changes)

    @property
    def charged_rate(self) -> Decimal:
        """Yuan per minute of the package's dearest standard rate (nationwide, or the dearer
        of local and long_distance; periods aside): the rate a minimum consumption follows."""
        rates = (self.nationwide, self.local, self.long_distance)
        return max(rate.per_minute for rate in rates if rate is not None)

    @property
    def charged_rate_exact(self) -> Fraction:
        """charged_rate before its rounding to 4 decimals: what a minimum scales by."""
        rates = (self.nationwide, self.local, self.long_distance)
        return max(rate.per_minute_exact for rate in rates if rate is not None)


_USAGE_RATES = ("nationwide", "local", "long_distance")


def _usage_rates(package: Package) -> Iterator[tuple[str, Rate]]:
    """The rates a prepaid tier discounts, named as a CDR names them ('off-peak local')."""
    for name in _USAGE_RATES:
        rate = getattr(package, name)
        if rate is not None:
            yield name, rate
    for period in package.periods:
        for name in _USAGE_RATES:
            rate = getattr(period, name)
            if rate is not None:
                yield f"{period.name} {name}", rate


def _check_tiers_lower_rates(package: Package) -> None:
    """Each tier must charge less per increment than the one before (or than no tier) for
    every rate that charges at all: the discount is rounded to the fen per increment, so a
    small one can round back to the rate (5% off 0.06 per 6 s is 0.06) and buy nothing."""
    versions = [("", package)]
    versions += [(f" from {c.effective}", package.on(c.effective)) for c in package.changes]
    for when, version in versions:
        for name, rate in _usage_rates(version):
            before = rate.charge
            for tier in package.prepaid_tiers:
                charge = to_fen(rate.charge * _kept(tier))  # as _discounted prices it
                if rate.charge and charge >= before:
                    raise PydanticCustomError(
                        "tier_discount",
                        "a larger prepayment buys a lower rate: {tier} leaves {rate} at "
                        "{charge} (each increment's charge is rounded to the fen); give a "
                        "larger discount",
                        {
                            "tier": f"{tier.prepayment}/{tier.discount_percent}%",
                            "rate": f"{name} {rate.describe()}{when}",
                            "charge": str(charge),
                        },
                    )
                before = charge


def _check_rates(package: Package, when: str) -> None:
    found = _given(package, ("nationwide", "local", "long_distance"))
    if found not in ("nationwide", "local, long_distance"):
        raise PydanticCustomError(
            "package_rates",
            "give either nationwide or both local and long_distance (found {found}{when})",
            {"found": found, "when": when},
        )


def _given(model: Strict, names: tuple[str, ...]) -> str:
    return ", ".join(name for name in names if getattr(model, name) is not None) or "none"


class Account(Strict):
    """The account of one 400 number."""

    package: str = Field(
        min_length=1, description="its package; default: the one segment_packages names"
    )
    low_balance_warning: Money = Field(
        DEFAULT_LOW_BALANCE_WARNING, description="warn when the prepaid balance falls below"
    )
    features: dict[str, date] = Field(
        default_factory=dict, description="feature name: the date it was switched on"
    )
    prepaid: bool = Field(True, description="calls consume a prepaid balance")
    minimum_monthly: Money | None = Field(
        None,
        description="this number's own minimum monthly consumption (default: its package's); "
        "a number in use keeps the minimum it agreed",
    )
    prepayment: Money = Field(
        ZERO, description="the prepayment the account agreed: its package's tier (prepaid_tiers)"
    )
    opened: date | None = Field(
        None,
        description="the day the account was opened: no month before it can be closed, and "
        "the month it falls in is charged rent and minimum for its days from it on (without "
        "it, the first entry on its ledger)",
    )
    recording_retention_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="days this account's call recordings are kept at least (medical "
        "subscribers: 730 or more); default router.yaml's recording_retention_days",
    )

    def has_feature(self, feature: str, day: date) -> bool:
        """Whether `feature` was switched on by `day` (and not switched off since)."""
        since = self.features.get(feature)
        return since is not None and since <= day


class Tariffs(Strict):
    """Everything that prices calls and accounts."""

    version: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._-]{1,40}$",
        description="tariff version; tariff ids read package@version",
    )
    timezone: SkipJsonSchema[IanaZone] = Field(
        DEFAULT_TIMEZONE,
        description="the billing time zone, router.yaml's `timezone`, set by the loader: rate "
        "periods, days and months are read in it; tariffs.yaml does not name it",
    )
    caller_tariffs: CallerTariffs
    features: dict[str, Money] = Field(
        default_factory=dict, description="fee deducted on the day a feature is switched on"
    )
    price_rise_notice_days: int = Field(
        30, ge=0, description="days' notice a price rise needs between announced and effective"
    )
    packages: dict[str, Package] = Field(min_length=1)
    segment_packages: dict[str, str] = Field(
        default_factory=dict,
        description="the package of an account that names none, by its number's segment "
        "(the first 4 digits: 4008, 4007, ...)",
    )
    accounts: dict[str, Account] = Field(default_factory=dict, description="by 400 number")

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("accounts", mode="before")
    @classmethod
    def _numbers_are_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {str(number): account for number, account in value.items()}

    @field_validator("segment_packages", mode="before")
    @classmethod
    def _segments_are_text(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {str(segment): package for segment, package in value.items()}

    @model_validator(mode="before")
    @classmethod
    def _segment_defaults(cls, data: Any) -> Any:
        """An account naming no package takes its segment's (segment_packages)."""
        if not isinstance(data, dict):
            return data
        segments, accounts = data.get("segment_packages"), data.get("accounts")
        if not isinstance(segments, dict) or not isinstance(accounts, dict):
            return data
        defaults = {str(segment): package for segment, package in segments.items()}
        filled = {}
        for number, account in accounts.items():
            default = defaults.get(str(number)[:4])
            if isinstance(account, dict) and "package" not in account and default is not None:
                account = {**account, "package": default}
            filled[number] = account
        return {**data, "accounts": filled}

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def tariff_id(self, package_name: str) -> str:
        """'business-hall@2026-11': the package, and the version of this file when given."""
        return f"{package_name}@{self.version}" if self.version else package_name

    def feature_on(self, number: str, feature: str, day: date) -> bool:
        """Whether calls to `number` get `feature` on `day`: from the day its account switched
        it on; a number without an account here is not rated and follows its plan alone."""
        account = self.accounts.get(number)
        return account is None or account.has_feature(feature, day)

    def minimum_of(self, number: str) -> Decimal:
        """The minimum monthly consumption of a number: its account's own, else its
        package's."""
        account = self.accounts[number]
        if account.minimum_monthly is not None:
            return account.minimum_monthly
        return self.packages[account.package].minimum_monthly

    def package_on(self, number: str, day: date) -> Package:
        """The package a number's calls and month are charged by on `day`."""
        account = self.accounts[number]
        return self.packages[account.package].on(day).for_prepayment(account.prepayment)

    def charged_rate(self, number: str, day: date) -> Decimal:
        """Yuan per minute a number is charged on `day` (Package.charged_rate)."""
        return self.package_on(number, day).charged_rate

    def reference_problems(self) -> Iterator[tuple[tuple[str, ...], str]]:
        """(field path, message) for names that point nowhere: checked once the shape is sound."""
        for segment, package in self.segment_packages.items():
            if not re.match(r"^400[0-9]$", segment):
                yield (
                    ("segment_packages", segment),
                    f"{segment!r} is not a segment (400 and a digit)",
                )
            if package not in self.packages:
                yield (
                    ("segment_packages", segment),
                    f"unknown package {package!r} (packages: {', '.join(sorted(self.packages))})",
                )
        for number, account in self.accounts.items():
            if not _400_NUMBER.match(number):
                yield ("accounts", number), f"{number!r} is not a 400 number (400 and 7 digits)"
            if account.package not in self.packages:
                yield (
                    ("accounts", number, "package"),
                    f"unknown package {account.package!r} "
                    f"(packages: {', '.join(sorted(self.packages))})",
                )
            for feature in account.features:
                if feature not in self.features:
                    yield (
                        ("accounts", number, "features", feature),
                        f"unknown feature {feature!r} (features: "
                        f"{', '.join(sorted(self.features)) or 'none defined'})",
                    )


def feature_name(key: str) -> str:
    """A feature as people read it: screen_pop -> 'CRM screen pop'; a key this list does
    not know reads as words (multi_language -> 'multi language')."""
    return FEATURE_NAMES.get(key, key.replace("_", " "))
