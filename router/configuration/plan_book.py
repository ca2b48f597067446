"""The plans, calendar and tariffs the daemon serves, reloaded on SIGHUP or file change.

A file with problems never takes a number off the air: its previous plan keeps serving and
every problem is logged with file and line. Calls in flight keep the plan object they
started with (plans are immutable), so a reload never changes a call half-way.

That holds across a restart too: each file that loads without problems is copied to
spool_dir/last-good (router.configuration.last_good), and at start, with nothing in memory
yet, a file that exists but has problems is served from its copy, told in one error line
with the copy's time. A file deleted from config/ loses its copy (a plan deleted is a number
taken off on purpose), and a copy that no longer loads (a schema changed by an upgrade) is
ignored with a warning. Either way the files with problems keep
hotline400_plan_last_reload_successful at 0 until they are fixed. A calendar, tariffs or
numbers file with problems and nothing to serve instead is named in the result (`unserved`):
the daemon refuses such a start rather than route without it. This is load time only: the
per-call path reads the plans in memory, never the copies.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import watchfiles

from dialplan.calendar import OfficialCalendar, parse_calendar
from dialplan.errors import ConfigError, Problem
from dialplan.plan import Plan
from dialplan.plan_loader import load_plans, parse_plan
from dialplan.yaml_source import read_config_text
from numbering.rules import NumberRules
from rating.tariff import Tariffs
from router.configuration.config_dir import CALENDAR_FILE, PLANS_DIR, TARIFFS_FILE
from router.configuration.last_good import LastGood
from router.configuration.number_rules import NUMBERS_FILE, parse_number_rules
from router.configuration.tariff_takeover import copy_tariffs, taking_over

log = logging.getLogger("hotline400.plans")

T = TypeVar("T")

WATCH_STEP_MS = 500
"""How often the file watcher's thread looks for changes and for the stop: watchfiles'
default, 50 ms, takes the interpreter 20 times a second, 1.0 ms of CPU a second on an idle
router (0.21 ms at 500 ms; docs/benchmarks.md); a plan saved is served up to ~0.5 s later."""


@dataclass(frozen=True)
class ReloadResult:
    loaded: int
    kept: list[str]
    """Numbers whose file has problems and whose previous plan keeps serving."""
    problems: list[Problem]
    unserved: dict[str, list[Problem]]
    """The calendar, tariffs and numbers files with problems that serve nothing, each with
    its problems: none of their versions has loaded since start and no last good copy of
    them loads. A plan so broken leaves one number unserved; these, every call."""

    @property
    def ok(self) -> bool:
        return not self.problems


class PlanBook:
    def __init__(
        self, config_dir: str | Path, zone: ZoneInfo, last_good: Path | None = None
    ) -> None:
        """`zone` is the billing time zone (router.yaml's), which the tariffs are read in;
        `last_good` the directory keeping the last good copy of each file (none: no copies)."""
        self.config_dir = Path(config_dir)
        self.zone = zone
        self._copies = LastGood(last_good, zone) if last_good is not None else None
        self._loaded: set[str] = set()
        """The single files (calendar, tariffs, numbers) that have given a version since
        start: one with problems keeps it, rather than turning to its last good copy."""
        self.calendar = OfficialCalendar()
        self.tariffs: Tariffs | None = None
        self.number_rules = NumberRules(timezone=zone.key)
        """config/numbers.yaml: the periods the daemon's numbers tick applies."""
        self.version = 0
        self.reloads_ok = 0
        self.reloads_failed = 0
        self.last_reload_ok = False
        """Whether the latest reload found no problem: what stays wrong until a file is fixed,
        where the counters only tell that a reload failed once."""
        self._plans: dict[str, Plan] = {}
        self.limited_numbers: frozenset[str] = frozenset()
        """Destinations some plan gives a concurrent-call limit (`max_calls`): the only
        numbers whose live calls the router counts."""

    def get(self, number: str) -> Plan | None:
        return self._plans.get(number)

    def numbers(self) -> list[str]:
        return sorted(self._plans)

    def reload(self) -> ReloadResult:
        """Re-read every plan, the calendar, tariffs and number rules; keep what was serving
        where a file is bad (on a first load, its last good copy), and every plan while the
        plans directory is missing (swapped by a deployment, or a mount gone): its absence is
        a problem, not a number taken off the air."""
        plans_dir = self.config_dir / PLANS_DIR
        from_copies: list[str] = []
        """The files with problems served from their last good copy, told once logged."""
        unserved: dict[str, list[Problem]] = {}
        if plans_dir.is_dir():
            plans, problems, kept = self._load_plans(plans_dir, from_copies)
        else:
            plans, kept = dict(self._plans), sorted(self._plans)
            problems = [Problem(str(plans_dir), 1, "(directory)", "no such directory")]
        self.calendar = self._load_file(
            CALENDAR_FILE,
            parse_calendar,
            OfficialCalendar(),
            self.calendar,
            problems,
            from_copies,
            unserved,
        )
        self.tariffs = self._load_file(
            TARIFFS_FILE, self._new_tariffs, None, self.tariffs, problems, from_copies, unserved
        )
        self.number_rules = self._load_file(
            NUMBERS_FILE,
            partial(parse_number_rules, zone=self.zone),
            NumberRules(timezone=self.zone.key),
            self.number_rules,
            problems,
            from_copies,
            unserved,
        )
        self._plans = plans
        self.limited_numbers = frozenset(
            number for plan in plans.values() for number in plan.call_limits
        )
        self.version += 1
        result = ReloadResult(len(plans), sorted(set(kept)), problems, unserved)
        self.last_reload_ok = result.ok
        if result.ok:
            self.reloads_ok += 1
            log.info("plans loaded: %d numbers (version %d)", result.loaded, self.version)
        else:
            self.reloads_failed += 1
            for problem in problems:
                log.error("configuration problem: %s", problem)
            for line in from_copies:
                log.error("%s", line)
            if kept:
                log.error("previous plan kept serving for %s", ", ".join(result.kept))
        return result

    def _load_plans(
        self, plans_dir: Path, from_copies: list[str]
    ) -> tuple[dict[str, Plan], list[Problem], list[str]]:
        """The plans of `plans_dir`, a file with problems replaced by the plan its number
        has been served (on a first load, the file's last good copy); the numbers so kept."""
        texts: dict[Path, str] = {}
        plans, problems = load_plans(plans_dir, texts)
        kept = []
        for file in dict.fromkeys(Path(problem.file) for problem in problems):
            number = file.stem
            if number in plans:  # an N.yml beside the N.yaml that loaded
                continue
            previous = self._plans.get(number)
            if previous is None:
                previous = self._from_copy(f"{PLANS_DIR}/{file.name}", parse_plan, from_copies)
            if previous is not None:
                plans[number] = previous
                kept.append(number)
        if self._copies is not None:
            for path, text in texts.items():
                self._copies.keep(f"{PLANS_DIR}/{path.name}", text)
            self._copies.prune(PLANS_DIR, plans_dir)
        return plans, problems, kept

    def _load_file(
        self,
        name: str,
        parse: Callable[[str, str], T],
        absent: T,
        serving: T,
        problems: list[Problem],
        from_copies: list[str],
        unserved: dict[str, list[Problem]],
    ) -> T:
        """What config file `name` now gives: `absent` when it does not exist; when it has
        problems (added to `problems`), what it gave so far (`serving`), or on a first load
        its last good copy, if one still loads; without either, `serving` still, and the
        file's problems in `unserved`."""
        path = self.config_dir / name
        if not path.exists():
            if self._copies is not None:
                self._copies.forget(name)
            self._loaded.discard(name)
            return absent
        try:
            text = read_config_text(path)
            value = parse(str(path), text)
        except ConfigError as error:
            problems.extend(error.problems)
            if name in self._loaded:
                return serving
            copy = self._from_copy(name, parse, from_copies)
            if copy is None:
                unserved[name] = error.problems
                return serving
            self._loaded.add(name)
            return copy
        if self._copies is not None:
            self._copies.keep(name, text)
        self._loaded.add(name)
        return value

    def _from_copy(
        self, name: str, parse: Callable[[str, str], T], from_copies: list[str]
    ) -> T | None:
        """The last good version of config file `name`; None without one, or when it no
        longer loads (a schema changed by an upgrade, a damaged disk): then a warning."""
        if self._copies is None:
            return None
        copy = self._copies.load(name, parse)
        if copy is None:
            return None
        from_copies.append(
            f"{self.config_dir / name} has problems: its last good version from {copy.saved} "
            f"serves instead ({copy.path})"
        )
        return copy.value

    def _new_tariffs(self, file: str, text: str) -> Tariffs:
        """The tariffs of `text`, refused (ConfigError) where they change what the serving
        tariffs forbid changing (router.configuration.tariff_takeover); at start, what the
        last good copy priced with, so a price rise without notice is not let in by a
        restart."""
        serving = self.tariffs if self.tariffs is not None else self._last_good_tariffs()
        return taking_over(file, text, self.zone, serving)

    def _last_good_tariffs(self) -> Tariffs | None:
        """The tariffs of the last good copy of tariffs.yaml, if one still loads."""
        if self._copies is None or TARIFFS_FILE in self._loaded:
            return None
        return copy_tariffs(self._copies.path(TARIFFS_FILE), self.zone)

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload whenever a plan file or the calendar changes, until `stop` is set.

        A watch follows the directory it was set on, not its name: when a `plans` directory
        appears, goes or is swapped for another (a deployment renaming a new one into
        place), the plans are reloaded and the watch set again on what the name now holds,
        so the files edited there afterwards are still picked up."""
        plans_dir = (self.config_dir / PLANS_DIR).absolute()

        def relevant(change: watchfiles.Change, path: str) -> bool:
            return path.endswith((".yaml", ".yml")) or Path(path) == plans_dir

        while not stop.is_set():
            watched = [path for path in (plans_dir, plans_dir.parent) if path.is_dir()]
            async for changes in watchfiles.awatch(
                *watched,
                stop_event=stop,
                watch_filter=relevant,
                debounce=200,
                step=WATCH_STEP_MS,
                recursive=False,
            ):
                self._reload_logging_faults()
                if any(Path(path) == plans_dir for _, path in changes):
                    break
            else:
                return

    def _reload_logging_faults(self) -> None:
        try:
            self.reload()
        except Exception:  # a fault in one reload must not end hot reloading for good
            self.reloads_failed += 1
            self.last_reload_ok = False
            log.exception("reload failed; the plans loaded before keep serving")
