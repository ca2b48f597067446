"""Whose account a feature fee is deducted from: a number a service provider holds for its
subscriber has its feature fees deducted from the provider's account on the day the feature
is switched on, with a deduction record naming the number (seed 001); a number outside the
inventory pays from its own account as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from numbering.lifecycle import NumberRecord
from rating.ledger import LedgerEntry, LedgerKind
from router.money.provider_accounts import provider_account
from router.storage.protocol import Store


async def providers_of(store: Store, numbers: Sequence[str]) -> dict[str, str]:
    """number -> the service provider holding it, for the numbers a provider holds."""
    return providers_in(await store.number_records(sorted(set(numbers))))


def providers_in(records: Mapping[str, NumberRecord]) -> dict[str, str]:
    """providers_of for inventory records already read."""
    return {number: r.provider for number, r in records.items() if r.provider is not None}


def on_payer(entry: LedgerEntry, providers: dict[str, str]) -> LedgerEntry:
    """The feature fee on the account that pays it: the provider's, as a deduction record
    whose ref and note name the number; other entries as they are."""
    provider = providers.get(entry.number)
    if entry.kind is not LedgerKind.FEATURE_FEE or provider is None:
        return entry
    return dataclasses.replace(
        entry,
        number=provider_account(provider),
        ref=f"{entry.number}:{entry.ref}",
        note=f"deduction for {entry.number}: {entry.note}",
    )
