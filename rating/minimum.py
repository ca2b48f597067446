"""Minimum monthly consumption: the top-up when a month's charges fall short, and the rule
for changing the agreed minimum.

The minimum may be raised, never lowered while the rate stays the same. When the rate
changes the minimum scales with it: new_minimum = minimum / old_rate * new_rate, rounded
half-up to the fen (a 100-yuan minimum agreed at 0.30/min becomes 50 yuan at 0.15/min);
the scaled minimum or anything above it is allowed.

What counts toward the minimum (the month's call charges, by the statement's reckoning) is
the caller's choice; this module only compares amounts.
"""

from __future__ import annotations

from decimal import Decimal

from rating.money import ZERO, to_fen
from rating.tariff import Package


class MinimumChangeRefused(ValueError):
    """A new minimum monthly consumption breaks the rule for changing it."""


def minimum_topup(month_charges: Decimal, minimum: Decimal) -> Decimal:
    """What must be charged on top of the month's charges to reach the minimum (else 0)."""
    return minimum - month_charges if month_charges < minimum else ZERO


def scale_minimum(minimum: Decimal, old_rate: Decimal, new_rate: Decimal) -> Decimal:
    """The minimum that corresponds, at `new_rate`, to `minimum` agreed at `old_rate`."""
    if old_rate <= 0 or new_rate <= 0:
        raise ValueError("rates must be more than 0 to scale a minimum")
    return to_fen(minimum * new_rate / old_rate)


def check_minimum_change(
    old_minimum: Decimal, new_minimum: Decimal, old_rate: Decimal, new_rate: Decimal
) -> None:
    """Raise MinimumChangeRefused unless the new minimum is allowed."""
    if new_rate == old_rate:
        if new_minimum < old_minimum:
            raise MinimumChangeRefused(
                f"the minimum monthly consumption cannot be lowered from {old_minimum} to "
                f"{new_minimum} while the rate stays at {old_rate}"
            )
        return
    lowest = scale_minimum(old_minimum, old_rate, new_rate)
    if new_minimum < lowest:
        raise MinimumChangeRefused(
            f"with the rate going from {old_rate} to {new_rate} the minimum monthly "
            f"consumption of {old_minimum} becomes {lowest}; {new_minimum} is below it"
        )


def check_package_change(old: Package, new: Package) -> None:
    """The rule above, applied to a package's minimum_monthly between two tariff files.

    A package without a minimum before may take any; one that had a minimum must keep a
    reference rate to scale it by.
    """
    if not old.minimum_monthly:
        return
    assert old.minimum_reference_rate is not None
    if new.minimum_reference_rate is None:
        raise MinimumChangeRefused(
            f"the minimum monthly consumption of {old.minimum_monthly} cannot be dropped"
        )
    check_minimum_change(
        old.minimum_monthly,
        new.minimum_monthly,
        old.minimum_reference_rate,
        new.minimum_reference_rate,
    )
