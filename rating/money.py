"""Money in yuan, kept to the fen (0.01 yuan) as decimal.Decimal, never float.

Every amount a tariff file gives is checked to have at most two decimal places and is then
held with exactly two (0.1 becomes 0.10), so sums and whole-number multiples of tariff
amounts are exact and already in fen. The only rounding anywhere in rating is `to_fen`,
half-up, used where a ratio or a scaling produces fractions of a fen.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def to_fen(amount: Decimal) -> Decimal:
    """Round to the fen, half-up (0.005 -> 0.01), as a cashier would."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def _exact_fen(amount: Decimal) -> Decimal:
    """Already within two decimal places (checked before): only the exponent changes."""
    return amount.quantize(FEN)


Money = Annotated[
    Decimal,
    Field(ge=0, decimal_places=2, description="yuan, at most 2 decimal places (fen)"),
    AfterValidator(_exact_fen),
]
"""An amount in a tariff file: not negative, to the fen."""
