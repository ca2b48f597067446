"""A service provider's ledger account: `provider:NAME`, beside the 400 numbers' accounts,
which are the numbers. Money code tells the two apart here, below the inventory that books
on both."""

from __future__ import annotations

PREFIX = "provider:"


def provider_account(provider: str) -> str:
    """The ledger account of a service provider."""
    return f"{PREFIX}{provider}"


def provider_of(account: str) -> str | None:
    """The service provider whose account `account` is; None for a 400 number's."""
    return account.removeprefix(PREFIX) if account.startswith(PREFIX) else None
