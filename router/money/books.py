"""What the money and numbers commands (`account`, `bill`, `rate`, `numbers`, `providers`)
open: tariffs, plans, the numbers' rules, the calendar and the store.

They read the router's config directory and book into the routers' own store (router.yaml's
`store`, or `database`, unless HOTLINE400_STORE names another: router.storage.location),
opened in router.yaml's time zone like the daemon opens it, so an entry they add falls in
the same local month and day as the routers' own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar
from dialplan.plan import Plan
from numbering.rules import NumberRules
from rating.tariff import Account, Tariffs
from router.configuration.config_dir import TARIFFS_FILE, load_config
from router.configuration.number_rules import NUMBERS_FILE
from router.configuration.settings import ROUTER_FILE, RouterSettings
from router.money.booking_alerts import Watch, sent_warnings
from router.storage.location import NoStore, store_for_command
from router.storage.protocol import Store


class BooksUnavailable(Exception):
    """The config or the database cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Books:
    settings: RouterSettings
    tariffs: Tariffs
    store_url: str
    """Where the books are kept, password hidden: for messages."""
    backend: Store
    """The store itself, not opened: `store()` opens it for a command's work."""
    plans: dict[str, Plan] = field(default_factory=dict)
    number_rules: NumberRules = field(default_factory=NumberRules)
    calendar: OfficialCalendar = field(default_factory=OfficialCalendar)

    @property
    def zone(self) -> ZoneInfo:
        """The billing time zone, router.yaml's, which the tariffs were loaded in."""
        return self.tariffs.zone

    def account(self, number: str) -> Account:
        try:
            return self.tariffs.accounts[number]
        except KeyError:
            known = ", ".join(sorted(self.tariffs.accounts)) or "none"
            raise BooksUnavailable(
                f"{number} has no account in {TARIFFS_FILE} (accounts: {known})"
            ) from None

    def numbers(self, only: str | None = None) -> list[str]:
        """Every account's number, or `only` once it is known to have an account."""
        if only is not None:
            self.account(only)
            return [only]
        return sorted(self.tariffs.accounts)

    def warnings(self) -> AbstractAsyncContextManager[Watch]:
        """Where the low-balance warnings of what a command books go: sent by its end."""
        return sent_warnings(self.settings, self.tariffs, self.plans)

    @asynccontextmanager
    async def store(self) -> AsyncIterator[Store]:
        store = self.backend
        try:
            await store.open()
            yield store
        finally:
            await store.close()


def load_books(config_dir: str | Path) -> Books:
    """The config directory's settings, tariffs and plans; BooksUnavailable when router.yaml
    or the tariffs have problems (money is never booked on half-read tariffs or settings)
    or the store cannot be named (router.storage.location.store_for_command). A broken plan
    of some number blocks nothing here: `hotline400 check` lists it, and re-rating skips
    that number's calls, saying why."""
    directory = Path(config_dir)
    if not directory.is_dir():
        raise BooksUnavailable(f"no configuration directory {directory}")
    config = load_config(directory)
    blocking = [
        problem
        for problem in config.problems
        if Path(problem.file).name in (ROUTER_FILE, TARIFFS_FILE, NUMBERS_FILE)
    ]
    if blocking:
        more = f" (and {len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise BooksUnavailable(f"{blocking[0]}{more}; fix it first (hotline400 check)")
    if config.tariffs is None:
        raise BooksUnavailable(f"no tariffs: {directory / TARIFFS_FILE} does not exist")
    try:
        url, store = store_for_command(config.settings)
    except NoStore as error:
        raise BooksUnavailable(str(error)) from None
    return Books(
        config.settings,
        config.tariffs,
        url,
        store,
        config.plans,
        config.number_rules,
        config.calendar,
    )
