"""A rate: the charge for a call of a given duration, in started billing increments.

    charge_for(0 s)                         = 0
    charge_for(s), s <= first_seconds       = first_charge
    charge_for(s) otherwise                 = first_charge
                                              + ceil((s - first_seconds) / per_seconds) * charge

A fixed-line caller's local tariff "0.22 for the first 3 minutes, then 0.11 per started
minute" is Rate(first_seconds=180, first_charge=0.22, per_seconds=60, charge=0.11); the
operator's business-hall long-distance tariff is Rate(per_seconds=6, charge=0.06). With
first_seconds 0 a first_charge is a set-up charge added to every answered call.

The charge never falls as the duration grows, and it is a step function, so the longest
duration within a budget is found by inverting it (`max_seconds_within`), not by search.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field

from rating.money import FEN, ZERO, Money

PER_MINUTE = Decimal("0.0001")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """Charge for a duration; amounts are in fen, so every charge is exact.

    A slotted dataclass rather than a pydantic model: the pricing loop reads these fields
    for every call, at half the cost. Pydantic still validates it inside tariff files (the
    annotations carry the constraints); __post_init__ checks rates built in code.
    """

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid")

    first_seconds: Annotated[
        int, Field(ge=0, description="length of the first segment in seconds, 0 for none")
    ] = 0
    first_charge: Annotated[
        Money, Field(description="charge for the first segment (or set-up)")
    ] = ZERO
    per_seconds: Annotated[int, Field(gt=0, description="billing increment in seconds, e.g. 60")]
    charge: Annotated[Money, Field(description="charge per started increment")]

    def __post_init__(self) -> None:
        if self.per_seconds <= 0 or self.first_seconds < 0:
            raise ValueError("per_seconds must be more than 0 and first_seconds not negative")
        for name in ("first_charge", "charge"):
            amount = getattr(self, name)
            if not isinstance(amount, Decimal) or amount < 0 or amount != amount.quantize(FEN):
                raise ValueError(f"{name} must be a Decimal amount in fen, not negative")
            object.__setattr__(self, name, amount.quantize(FEN))

    def charge_for(self, seconds: int) -> Decimal:
        """The charge for `seconds` of answered time."""
        if seconds <= 0:
            return ZERO
        if seconds <= self.first_seconds:
            return self.first_charge
        increments = -(-(seconds - self.first_seconds) // self.per_seconds)
        return self.first_charge + increments * self.charge

    def billed_seconds(self, seconds: int) -> int:
        """`seconds` rounded up to what is charged: the first segment, then whole increments."""
        if seconds <= 0:
            return 0
        if seconds <= self.first_seconds:
            return self.first_seconds
        increments = -(-(seconds - self.first_seconds) // self.per_seconds)
        return self.first_seconds + increments * self.per_seconds

    def max_seconds_within(self, budget: Decimal) -> int | None:
        """The longest duration whose charge stays within `budget` (>= 0); None if unbounded.

        charge_for(result) <= budget < charge_for(result + 1).
        """
        if budget < 0:
            raise ValueError(f"a budget cannot be negative (got {budget})")
        first_step = self.first_charge if self.first_seconds else self.first_charge + self.charge
        if first_step > budget:
            return 0
        if self.charge == 0:
            return None
        increments = int((budget - self.first_charge) // self.charge)
        return self.first_seconds + increments * self.per_seconds

    @property
    def per_minute(self) -> Decimal:
        """The increment charge as yuan per minute (0.06/6s: 0.6000), to 4 decimals: how
        rates are compared and recorded when a minimum consumption follows its rate
        (rating.minimum)."""
        return (self.charge * 60 / self.per_seconds).quantize(PER_MINUTE)

    @property
    def per_minute_exact(self) -> Fraction:
        """The increment charge as yuan per minute, exactly (0.02/7s: 6/35, which
        per_minute rounds to 0.1714): what a minimum is scaled by (rating.minimum)."""
        return Fraction(self.charge) * 60 / self.per_seconds

    def describe(self) -> str:
        """'0.11/60s', '0.22 first 180s, then 0.11/60s' or '0.50 set-up, then 0.10/60s'."""
        step = f"{self.charge}/{self.per_seconds}s"
        if self.first_seconds:
            return f"{self.first_charge} first {self.first_seconds}s, then {step}"
        if self.first_charge:
            return f"{self.first_charge} set-up, then {step}"
        return step
