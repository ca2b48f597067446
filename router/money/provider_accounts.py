"""A service provider's ledger account: `provider:NAME`, beside the 400 numbers' accounts,
which are the numbers; named here, below the inventory that books on both."""

from __future__ import annotations

PREFIX = "provider:"


def provider_account(provider: str) -> str:
    """The ledger account of a service provider."""
    return f"{PREFIX}{provider}"

