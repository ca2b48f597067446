"""The account ledger of a 400 number: every movement of its balance, one entry each.

Amounts are signed from the account's side: debits (calls, rent, feature fees, minimum
top-ups, the number's opening, selection and keeping fees) are negative, payments positive,
adjustments either. The balance is the opening balance plus the sum of the entries; nothing
else moves it. The storage side persists LedgerEntry as it is. A service provider's account
is a ledger of its own (router.money.provider_accounts).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum

from rating.call import Price
from rating.money import ZERO
from rating.tariff import Tariffs, feature_name


class LedgerKind(StrEnum):
    CALL = "call"
    RENT = "rent"
    FEATURE_FEE = "feature_fee"
    MINIMUM_TOPUP = "minimum_topup"
    PAYMENT = "payment"
    ADJUSTMENT = "adjustment"
    OPENING_FEE = "opening_fee"
    SELECTION_FEE = "selection_fee"
    KEEPING_FEE = "keeping_fee"


NUMBER_FEE_KINDS = frozenset(
    {LedgerKind.OPENING_FEE, LedgerKind.SELECTION_FEE, LedgerKind.KEEPING_FEE}
)
"""Fees a number's lifecycle books (numbering.lifecycle): opening, selection, keeping."""
DEBIT_KINDS = frozenset(
    {LedgerKind.CALL, LedgerKind.RENT, LedgerKind.FEATURE_FEE, LedgerKind.MINIMUM_TOPUP}
    | NUMBER_FEE_KINDS
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement: `ref` ties it to its cause (a call id, a month '2026-11', a feature)."""

    number: str
    at: datetime
    amount: Decimal
    kind: LedgerKind
    ref: str
    note: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", LedgerKind(self.kind))
        if self.at.utcoffset() is None:
            raise ValueError("ledger times must be timezone-aware")
        if not isinstance(self.amount, Decimal) or self.amount.as_tuple().exponent < -2:
            raise ValueError(f"ledger amounts are Decimal yuan to the fen (got {self.amount!r})")
        if self.kind in DEBIT_KINDS and self.amount > 0:
            raise ValueError(f"a {self.kind} entry is a debit: its amount cannot be positive")
        if self.kind is LedgerKind.PAYMENT and self.amount < 0:
            raise ValueError("a payment cannot be negative (book a refund as an adjustment)")


def call_entry(number: str, call_id: str, answered_at: datetime, price: Price) -> LedgerEntry:
    """The debit of a priced call: the subscriber's (callee's) share, at the answer instant.

    Written for every answered call, 0.00 included (a call within the included minutes), so
    the ledger and the CDRs can be reconciled one to one.
    """
    return LedgerEntry(
        number,
        answered_at,
        ZERO - price.callee_share,
        LedgerKind.CALL,
        call_id,
        price.rate_description,
    )


def feature_fees_due(tariffs: Tariffs, number: str, day: date) -> list[LedgerEntry]:
    """The fees of the features switched on `day`: each deducted in full that day.

    The ref names the feature and the day ('recording@2026-11-05'), so switching a feature
    on again another day is a new deduction, and booking the same day twice is the same one.
    """
    account = tariffs.accounts[number]
    start_of_day = datetime.combine(day, time(0), tzinfo=tariffs.zone)
    return [
        LedgerEntry(
            number,
            start_of_day,
            ZERO - tariffs.features[feature],
            LedgerKind.FEATURE_FEE,
            f"{feature}@{switched_on}",
            f"{feature_name(feature)} switched on {switched_on}",
        )
        for feature, switched_on in account.features.items()
        if switched_on == day
    ]
