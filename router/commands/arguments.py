"""The kinds of value the commands take, read the same way everywhere and refused in our
own words: 400 numbers, service providers' names, phone numbers, days, months, times, counts
and amounts.

Each function is an argparse `type=`: it returns the value or raises ArgumentTypeError
with a message that says what was wrong and what is expected.
"""

from __future__ import annotations

import argparse
import calendar
import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from dialplan.geo import locate

TIME_FORMS = '"YYYY-MM-DD", "YYYY-MM-DD HH:MM" or ISO 8601 with offset'
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_TIME_OF_DAY = re.compile(r"[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?")
_AMOUNT = re.compile(r"\d{1,12}(?:\.\d{1,2})?")


def service_number(text: str) -> str:
    """A 400 number, separators allowed: '400-600-1234' -> '4006001234'."""
    digits = "".join(ch for ch in text if ch.isdigit())
    if len(digits) != 10 or not digits.startswith("400") or re.search(r"[^\d\s-]", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a 400 number like 4006001234")
    return digits


def provider_name(text: str) -> str:
    """A service provider's short name, as `providers add` takes it: 'sp-east'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a provider name (lower-case letters, digits, '_', '-'; at most 32)"
        )
    return text


def phone_number(text: str) -> str:
    """A destination or caller number as the plans write it: '0531-8888 6666' -> '053188886666'."""
    number = locate(text).number
    if not number:
        raise argparse.ArgumentTypeError(f"{text!r} is not a phone number")
    return number


def caller_id(text: str) -> str:
    """A caller to look for: its number as the router stores it, however written
    ('+86 531 8888-9999' -> '053188889999'), else the text as the carrier sent it
    ('anonymous')."""
    return locate(text).number or text.strip()


def day(text: str) -> date:
    """'2026-11-23'; an impossible date is named as such ('February 2026 has 28 days')."""
    match = _DAY.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-23")
    year, month, number = (int(part) for part in match.groups())
    _check_month(text, year, month)
    days = calendar.monthrange(year, month)[1]
    if not 1 <= number <= days:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: {calendar.month_name[month]} {year} has {days} days"
        )
    return date(year, month, number)


def month(text: str) -> str:
    """'2026-11', returned as written."""
    match = _MONTH.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month like 2026-11")
    _check_month(text, int(match[1]), int(match[2]))
    return text.strip()


def year(text: str) -> int:
    """'2027': a year the calendar and the dates after it can be reckoned in."""
    if not re.fullmatch(r"-?\d{1,6}", text.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a year like 2027")
    _check_month(text, int(text), 1)
    return int(text)


def _check_month(text: str, year: int, month: int) -> None:
    """Years from 1900 to 9998: the commands reach into the day and month after a date."""
    if not 1900 <= year <= 9998:
        raise argparse.ArgumentTypeError(f"{text!r}: the year {year} is out of range")
    if not 1 <= month <= 12:
        raise argparse.ArgumentTypeError(f"{text!r}: there is no month {month:02d}")


def moment(text: str) -> date | datetime:
    """A day, a local time, or an ISO 8601 time with offset; a time without an offset is
    local, and the command applies its zone. Every command reads times this way."""
    value = text.strip()
    start = day(value[:10]) if _DAY.match(value[:10]) else None
    if start is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use {TIME_FORMS}")
    rest = value[10:]
    if not rest:
        return start
    match = _TIME_OF_DAY.fullmatch(rest)
    hour, minute, second = (int(part or 0) for part in match.groups()[:3]) if match else (0, 0, 0)
    if match is None or hour > 23 or minute > 59 or second > 59:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time: use {TIME_FORMS}")
    return datetime.fromisoformat(value.replace(" ", "T", 1))


def instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    """A `moment` as an instant: a day is its local midnight, a time without an offset is
    local to `zone`, a time with one is kept."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=zone)
    return value if value.tzinfo else value.replace(tzinfo=zone)


def positive(limit: int) -> Callable[[str], int]:
    """A whole number from 1 to `limit`."""

    def parse(text: str) -> int:
        if not text.isdigit() or not 1 <= int(text) <= limit:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {limit:,}")
        return int(text)

    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def amount(limit: Decimal) -> Callable[[str], Decimal]:
    """Yuan to the fen, more than 0 and at most `limit`, written as digits: '600', '600.5',
    '600.00' (no exponents, no signs, no thousands separators)."""

    def parse(text: str) -> Decimal:
        if _AMOUNT.fullmatch(text.strip()) is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an amount like 600.00 (yuan, at most 2 decimals)"
            )
        value = Decimal(text.strip()).quantize(Decimal("0.01"))
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r}: the amount must be more than 0")
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text!r}: more than {limit:,} yuan at once")
        return value

    parse.__name__ = "amount"
    return parse


def threshold(limit: Decimal) -> Callable[[str], Decimal]:
    """A warning threshold: yuan to the fen from 0 (warn once the balance goes below 0) to
    `limit`, written as an amount is."""

    def parse(text: str) -> Decimal:
        if _AMOUNT.fullmatch(text.strip()) is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a threshold like 50.00 (yuan, at most 2 decimals, not below 0)"
            )
        value = Decimal(text.strip()).quantize(Decimal("0.01"))
        if value > limit:
            raise argparse.ArgumentTypeError(f"{text!r}: a threshold is at most {limit:,} yuan")
        return value

    parse.__name__ = "threshold"
    return parse
