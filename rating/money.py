"""Money in yuan, kept to the fen (0.01 yuan) as decimal.Decimal, never float.

Every amount a tariff file gives is checked to have at most two decimal places and is then
held with exactly two (0.1 becomes 0.10), so sums and whole-number multiples of tariff
amounts are exact and already in fen. The only rounding anywhere in rating is to the fen,
half-up, where a ratio or a scaling produces fractions of a fen: `to_fen`, and
`fraction_to_fen` for an exact ratio (a minimum scaled by rates per minute such as 0.02
per 7 s, which no decimal holds exactly).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def to_fen(amount: Decimal) -> Decimal:
    """Round to the fen, half-up (0.005 -> 0.01), as a cashier would."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def fraction_to_fen(amount: Fraction) -> Decimal:
    """An exact amount rounded to the fen, half-up (away from zero, like `to_fen`)."""
    fen = math.floor(abs(amount) * 100 + Fraction(1, 2))
    return (Decimal(-fen if amount < 0 else fen) / 100).quantize(FEN)


def _exact_fen(amount: Decimal) -> Decimal:
    """Already within two decimal places (checked before): only the exponent changes. An
    amount too large to hold in fen (1e30) is a typo, refused like any other."""
    try:
        return amount.quantize(FEN)
    except InvalidOperation:
        raise PydanticCustomError(
            "amount_too_large", "{amount} is too large an amount", {"amount": str(amount)}
        ) from None


Money = Annotated[
    Decimal,
    Field(ge=0, decimal_places=2, description="yuan, at most 2 decimal places (fen)"),
    AfterValidator(_exact_fen),
]
"""An amount in a tariff file: not negative, to the fen."""
