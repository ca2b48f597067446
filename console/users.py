"""Who may use the console and what each may see and change.

Three roles: the operator's administrators see and change everything; a subscriber's
administrators see and change their own account's numbers and staff; a subscriber's staff
only read. A subscriber user is bound to one account (the subscriber), and everything the
console shows it is filtered by the numbers of that account, so another subscriber's call,
plan or statement answers "not found" rather than "forbidden": its existence is not told.

A number changes hands: cancelled, frozen, back to the pool, applied for by another company.
What a subscriber user sees of its number is bounded by the current holding (since the number
last came back to the pool), and a user created before that belongs to a previous holder: it
no longer signs in.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, overload

from router.numbers.known import is_known_number

if TYPE_CHECKING:
    from router.storage.protocol import Store


class Role(StrEnum):
    OPERATOR = "operator"
    SUBSCRIBER_ADMIN = "subscriber-admin"
    SUBSCRIBER_STAFF = "subscriber-staff"


USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}")


class InvalidUser(ValueError):
    """A user that cannot be created as asked."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    account: str | None
    password_hash: str
    disabled: bool
    created_at: datetime

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR

    @property
    def may_change(self) -> bool:
        """Staff only read; both kinds of administrator change what they can see."""
        return self.role is not Role.SUBSCRIBER_STAFF


def check_new_user(
    name: str, role: Role, account: str | None, account_asked_as: str = "--account"
) -> None:
    """Refuse names that would be ambiguous in the audit log and roles without their account.
    `account_asked_as` is how the refusal names where the account is given: the command's
    option, or the console form's field."""
    if not USER_NAME.fullmatch(name):
        raise InvalidUser(
            f"{name!r} is not a user name: 2-64 letters, digits, '.', '_', '@' or '-'"
        )
    if role is Role.OPERATOR and account is not None:
        raise InvalidUser(f"an operator user belongs to no account: leave out {account_asked_as}")
    if role is not Role.OPERATOR and not account:
        raise InvalidUser(f"a {role} user needs {account_asked_as} (the subscriber it works for)")


async def check_account(account: str, numbers: Collection[str], store: Store) -> None:
    """Refuse an account a subscriber user could not work for: it must be a 400 number of
    `numbers` (the plans' and tariffs.yaml's: its calls and money) or of the inventory, or a
    subscriber of the inventory (its numbers on the Numbers pages). Anything else is a typo
    that would make a user who sees nothing."""
    if await is_known_number(account, numbers, store) or await store.subscribers(name=account):
        return
    raise InvalidUser(
        f"no account {account}: name a 400 number of the plans or tariffs.yaml, or a "
        "subscriber of the inventory (hotline400 numbers apply --account)"
    )


@dataclass(frozen=True, slots=True)
class Scope:
    """The 400 numbers a user may see, and from when: all of them, ever, for the operator."""

    numbers: frozenset[str] | None
    since: datetime | None = None
    """When the current holding of the user's number began (it last came back to the pool):
    its calls, plans and money before then were another company's. None: from the start."""

    def allows(self, number: str) -> bool:
        return self.numbers is None or number in self.numbers

    def covers(self, at: datetime) -> bool:
        """Whether something of the user's number at `at` happened in the current holding."""
        return self.since is None or at >= self.since

    def allows_at(self, number: str, at: datetime) -> bool:
        """A call of `number` started at `at`: the user's to see."""
        return self.allows(number) and self.covers(at)

    def overlaps(self, end: datetime) -> bool:
        """Whether a span ending (exclusive) at `end` has a part in the current holding."""
        return self.since is None or end > self.since

    @overload
    def start(self, since: datetime) -> datetime: ...
    @overload
    def start(self, since: None) -> datetime | None: ...
    def start(self, since: datetime | None) -> datetime | None:
        """Where a search from `since` (None: from the start) begins for this user."""
        if self.since is None:
            return since
        return self.since if since is None else max(since, self.since)

    def outlived(self, created_at: datetime) -> bool:
        """A subscriber user created before the current holding began worked for a previous
        holder of its number."""
        return self.since is not None and created_at < self.since
