"""Minimum monthly consumption: the top-up when a month's charges fall short, and the rule
for changing a number's agreed minimum.

A number's terms are its minimum monthly consumption (its account's own, else its
package's) and the rate it is actually charged, in yuan per minute (Package.charged_rate).
When terms change, from one tariff file to the next or against the terms the store last
recorded for the number, the rule is:

- raising the minimum is always allowed;
- a number already in use (its account opened on or before the day of the change) keeps
  its minimum, whatever its rate does;
- at an unchanged or higher rate the minimum never goes down;
- when the charged rate goes down the minimum may go down with it to
  minimum / old_rate * new_rate, rounded half-up to the fen, never lower (a 100-yuan
  minimum at 0.30/min may become 50 yuan at 0.15/min).

Rates are compared, shown and recorded (the store's terms history) in yuan per minute to
4 decimals (Rate.per_minute). The scaling itself takes each rate as exactly as it is known:
a rate from a tariff file exactly (0.02 per 7 s is 6/35 yuan per minute, not 0.1714), a
rate read back from the history as recorded; only the scaled minimum is rounded.

Moving a number to another package is checked the same way, with the new package's rate
and minimum. Every refusal names the number, the old and new figures and the rule.

What counts toward the minimum (the month's call charges, by the statement's reckoning) is
the caller's choice; this module only compares amounts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from rating.money import ZERO, fraction_to_fen
from rating.tariff import Tariffs


class MinimumChangeRefused(ValueError):
    """A new minimum monthly consumption breaks the rule for changing it."""


@dataclass(frozen=True, slots=True)
class Terms:
    """What a number agreed: its package, its minimum monthly consumption and the rate it
    is charged, in yuan per minute."""

    package: str
    minimum: Decimal
    rate: Decimal
    exact_rate: Fraction | None = field(default=None, compare=False)
    """`rate` before its rounding to 4 decimals, when the terms come from a tariff file;
    None for terms read back from the store, which keeps `rate` (and is not compared)."""

    def describe(self) -> str:
        """'minimum 500.00 at 0.20/min (nationwide-300)'."""
        return f"minimum {self.minimum} at {rate_text(self.rate)} ({self.package})"

    @property
    def scaling_rate(self) -> Fraction:
        """The rate as exactly as it is known: what a minimum scales by."""
        return Fraction(self.rate) if self.exact_rate is None else self.exact_rate


@dataclass(frozen=True, slots=True)
class RecordedTerms:
    """A number's terms as the store keeps them: from which local day they hold, when they
    were recorded and why."""

    number: str
    since: date
    terms: Terms
    recorded_at: datetime
    note: str


def terms_of(tariffs: Tariffs, number: str, day: date) -> Terms:
    """The terms `tariffs` give an account's number on `day` (the rate then in force)."""
    package = tariffs.package_on(number, day)
    return Terms(
        tariffs.accounts[number].package,
        tariffs.minimum_of(number),
        package.charged_rate,
        package.charged_rate_exact,
    )


def minimum_topup(month_charges: Decimal, minimum: Decimal) -> Decimal:
    """What must be charged on top of the month's charges to reach the minimum (else 0)."""
    return minimum - month_charges if month_charges < minimum else ZERO


def scale_minimum(
    minimum: Decimal, old_rate: Decimal | Fraction, new_rate: Decimal | Fraction
) -> Decimal:
    """The minimum that corresponds, at `new_rate`, to `minimum` agreed at `old_rate`,
    computed exactly and rounded half-up to the fen."""
    if old_rate <= 0 or new_rate <= 0:
        raise ValueError("rates must be more than 0 to scale a minimum")
    return fraction_to_fen(Fraction(minimum) * Fraction(new_rate) / Fraction(old_rate))


def in_use(opened: date | None, day: date) -> str | None:
    """Why a number counts as in use on `day` ('in use since 2025-06-01'), or None when it
    is not yet. An account that names no opening day is taken as in use: its minimum is
    kept rather than risk lowering an agreed one."""
    if opened is None:
        return "in use (its account names no opening day)"
    return f"in use since {opened}" if opened <= day else None


def check_terms_change(number: str, old: Terms, new: Terms, used: str | None) -> None:
    """Raise MinimumChangeRefused unless `new` may follow `old` (see the module's rule);
    `used` says why the number is in use (in_use()), None when it is not yet."""
    if new.minimum >= old.minimum:
        return
    change = f"{number}: minimum monthly consumption {old.minimum} -> {new.minimum}"
    if old.package != new.package:
        change += f" (package {old.package} -> {new.package})"
    rates = f"rate {rate_text(old.rate)} -> {rate_text(new.rate)}"
    if used is not None:
        raise MinimumChangeRefused(
            f"{change} refused: a number already in use keeps its minimum ({used}; {rates})"
        )
    if new.rate >= old.rate:
        what = "an unchanged" if new.rate == old.rate else "a higher"
        raise MinimumChangeRefused(
            f"{change} refused: at {what} rate ({rates}) the minimum may be raised, never lowered"
        )
    lowest = scale_minimum(old.minimum, old.scaling_rate, new.scaling_rate)
    if new.minimum < lowest:
        raise MinimumChangeRefused(
            f"{change} refused: with the {rates} the minimum may go down to "
            f"{old.minimum} / {_scaling_figure(old)} * {_scaling_figure(new)} = {lowest}, "
            "never lower"
        )


def refused_terms_changes(
    old: Tariffs, new: Tariffs, day: date
) -> Iterator[tuple[tuple[str, ...], str]]:
    """(field path, message) for each number whose terms `new` changes against the rule,
    the change taking effect on `day`; numbers new to `new` may take any terms."""
    for number, account in new.accounts.items():
        previous = old.accounts.get(number)
        if previous is None:
            continue
        try:
            check_terms_change(
                number,
                terms_of(old, number, day),
                terms_of(new, number, day),
                in_use(previous.opened, day),
            )
        except MinimumChangeRefused as error:
            field = "minimum_monthly" if account.minimum_monthly is not None else "package"
            yield ("accounts", number, field), str(error)


def rate_text(rate: Decimal) -> str:
    """0.2000 -> '0.20/min'."""
    return f"{_figure(rate)}/min"


def _scaling_figure(terms: Terms) -> str:
    """The rate a minimum was scaled by: 0.15, or 0.17142857… for 6/35."""
    exact = terms.scaling_rate
    if exact == Fraction(terms.rate):
        return str(_figure(terms.rate))
    return f"{Decimal(math.floor(exact * 10**8)) / 10**8}…"


def _figure(rate: Decimal) -> Decimal:
    """A per-minute rate as written: 0.2000 -> 0.20, 0.0667 stays."""
    fen = rate.quantize(Decimal("0.01"))
    return fen if rate == fen else rate
