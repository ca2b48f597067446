"""What every console request works with: the configuration, the store and the clock.

The configuration directory is the one the routers read; it is reloaded when one of its
files changes, so a plan saved here (or by an admin's editor) shows on the next page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from console.users import Scope, User
from dialplan.errors import Problem
from router.configuration.config_dir import PLANS_DIR, ConfigSet, load_config
from router.configuration.served import as_served
from router.configuration.tariff_takeover import refused_by_routers
from router.money.booking_alerts import Watch, sent_warnings
from router.numbers.holdings import holding_since
from router.storage.location import ConfiguredStore


@dataclass
class ConfigCache:
    """load_config again only when a file of the directory changed (size or mtime). The
    routers' last good copies are read then too: a copy changes only when its file loads,
    which is a change of the file."""

    directory: Path
    _stamp: tuple[tuple[str, int, int], ...] | None = None
    _files: ConfigSet | None = None
    _served: ConfigSet | None = None

    def get(self) -> ConfigSet:
        """The configuration as the routers serve it (router.configuration.served): what
        the console's pages show."""
        self._refresh()
        assert self._served is not None
        return self._served

    def files(self) -> ConfigSet:
        """The configuration as its files read now, as `check` reads them (a tariffs.yaml
        the routers refuse against their last good copy among the files with problems):
        what its list of problems is made of."""
        self._refresh()
        assert self._files is not None
        return self._files

    def _refresh(self) -> None:
        stamp = self._stamp_now()
        if self._files is None or stamp != self._stamp:
            self._files = refused_by_routers(load_config(self.directory))
            self._served, self._stamp = as_served(self._files), stamp

    def _stamp_now(self) -> tuple[tuple[str, int, int], ...]:
        files = [*self.directory.glob("*.yaml"), *(self.directory / PLANS_DIR).glob("*.yaml")]
        stamps = []
        for path in sorted(files):
            try:
                info = path.stat()
            except OSError:
                continue
            stamps.append((path.name, info.st_size, info.st_mtime_ns))
        return tuple(stamps)


@dataclass(frozen=True, slots=True)
class CheckedProblems:
    """`check`'s problems of one loaded configuration, as listed at `at` (monotonic s)."""

    config: ConfigSet
    at: float
    problems: list[Problem]


@dataclass
class Console:
    config_dir: Path
    store: ConfiguredStore
    secret: bytes
    clock: Callable[[], datetime]
    secure_cookies: bool = True
    configs: ConfigCache = field(init=False)
    feature_switches: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    """Held by one feature switch at a time (console.feature_switching.switching)."""
    plan_saves: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)
    """Held by one plan save or restore at a time (console.views.routing)."""
    checked: CheckedProblems | None = field(init=False, default=None)
    """The configuration's problems as last listed (console.config_problems)."""

    def __post_init__(self) -> None:
        self.configs = ConfigCache(self.config_dir)

    @property
    def config(self) -> ConfigSet:
        """The configuration the routers serve: a file with problems as its last good copy."""
        return self.configs.get()

    @property
    def zone(self) -> ZoneInfo:
        """Days and months of reports and money are the billing zone's (router.yaml)."""
        return ZoneInfo(self.config.settings.timezone)

    def now(self) -> datetime:
        return self.clock().astimezone(self.zone)

    def warnings(self) -> AbstractAsyncContextManager[Watch]:
        """Where the low-balance warnings of what a request books go (router.yaml's webhook,
        the plan's text messages): sent before its answer, as a command sends them."""
        config = self.config
        return sent_warnings(config.settings, config.tariffs, config.plans)

    def all_numbers(self) -> list[str]:
        """Every 400 number the operator runs: with a plan (one whose file is broken too:
        its routing page shows the file's problems) or with an account."""
        config = self.config
        accounts = config.tariffs.accounts if config.tariffs is not None else {}
        return sorted(set(config.plans) | broken_plans(config) | set(accounts))

    async def scope(self, user: User) -> Scope:
        """A subscriber user sees the numbers of its account (the account named after a
        number is that number's account: tariffs.yaml keys accounts by number), since the
        number last came back to the pool: what came before was a previous holder's."""
        if user.is_operator:
            return Scope(None)
        since = None
        if user.account is not None:
            since = holding_since(await self.store.number_history(user.account))
        return Scope(frozenset(self.numbers_for(user)), since)

    def numbers_for(self, user: User) -> list[str]:
        """The numbers the user may see, whatever their holding."""
        if user.is_operator:
            return self.all_numbers()
        return [number for number in self.all_numbers() if number == user.account]


def broken_plans(config: ConfigSet) -> set[str]:
    """The numbers whose plan file did not load: the routers keep serving their previous
    plan (router.configuration.plan_book), so the console still runs them."""
    plans = config.directory / PLANS_DIR
    return {
        Path(p.file).stem
        for p in config.problems
        if Path(p.file).parent == plans and re.fullmatch(r"400\d{7}", Path(p.file).stem)
    }
