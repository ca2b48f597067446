"""The plans, calendar and tariffs the daemon serves, reloaded on SIGHUP or file change.

A file with problems never takes a number off the air: its previous plan keeps serving and
every problem is logged with file and line. Calls in flight keep the plan object they
started with (plans are immutable), so a reload never changes a call half-way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import watchfiles

from dialplan.calendar import OfficialCalendar, load_calendar
from dialplan.errors import ConfigError, Problem
from dialplan.plan import Plan
from dialplan.plan_loader import load_plans
from dialplan.yaml_source import read_yaml
from numbering.rules import NumberRules
from rating.minimum import refused_terms_changes
from rating.price_changes import refused_price_rises
from rating.tariff import Tariffs
from rating.tariff_loader import load_tariffs
from router.configuration.config_dir import CALENDAR_FILE, PLANS_DIR, TARIFFS_FILE
from router.configuration.number_rules import NUMBERS_FILE, load_number_rules

log = logging.getLogger("hotline400.plans")


@dataclass(frozen=True)
class ReloadResult:
    loaded: int
    kept: list[str]
    """Numbers whose file has problems and whose previous plan keeps serving."""
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


class PlanBook:
    def __init__(self, config_dir: str | Path, zone: ZoneInfo) -> None:
        """`zone` is the billing time zone (router.yaml's), which the tariffs are read in."""
        self.config_dir = Path(config_dir)
        self.zone = zone
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
        """Re-read every plan and the calendar; keep what was serving where a file is bad,
        and every plan while the plans directory is missing (swapped by a deployment, or a
        mount gone): its absence is a problem, not a number taken off the air."""
        plans_dir = self.config_dir / PLANS_DIR
        kept = []
        if plans_dir.is_dir():
            plans, problems = load_plans(plans_dir)
        else:
            plans, problems = {}, [Problem(str(plans_dir), 1, "(directory)", "no such directory")]
            kept = sorted(self._plans)
            plans.update(self._plans)
        for problem in problems:
            number = Path(problem.file).stem
            previous = self._plans.get(number)
            if previous is not None and number not in plans:
                plans[number] = previous
                kept.append(number)
        try:
            self.calendar = load_calendar(self.config_dir / CALENDAR_FILE)
        except ConfigError as error:
            problems.extend(error.problems)
        tariffs_file = self.config_dir / TARIFFS_FILE
        if not tariffs_file.exists():
            self.tariffs = None
        else:
            try:
                tariffs = load_tariffs(tariffs_file, self.zone)
                today = datetime.now(self.zone).date()
                refused = refused_tariff_changes(self.tariffs, tariffs, tariffs_file, today)
                if refused:
                    raise ConfigError(refused)
                self.tariffs = tariffs
            except ConfigError as error:  # the previous tariffs keep pricing calls
                problems.extend(error.problems)
        try:
            self.number_rules = load_number_rules(self.config_dir / NUMBERS_FILE, self.zone)
        except ConfigError as error:  # the previous rules keep ticking
            problems.extend(error.problems)
        self._plans = plans
        self.limited_numbers = frozenset(
            number for plan in plans.values() for number in plan.call_limits
        )
        self.version += 1
        result = ReloadResult(len(plans), sorted(set(kept)), problems)
        self.last_reload_ok = result.ok
        if result.ok:
            self.reloads_ok += 1
            log.info("plans loaded: %d numbers (version %d)", result.loaded, self.version)
        else:
            self.reloads_failed += 1
            for problem in problems:
                log.error("configuration problem: %s", problem)
            if kept:
                log.error("previous plan kept serving for %s", ", ".join(result.kept))
        return result

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
                *watched, stop_event=stop, watch_filter=relevant, debounce=200, recursive=False
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


def refused_tariff_changes(
    old: Tariffs | None, new: Tariffs, path: Path, day: date
) -> list[Problem]:
    """What the new tariffs change against the rules, the file taking over on `day`, each
    with its file and line: a number's minimum monthly consumption (rating.minimum) and
    price rises without their notice (rating.price_changes)."""
    if old is None:
        return []
    refused = [*refused_terms_changes(old, new, day), *refused_price_rises(old, new, day)]
    if not refused:
        return []
    source = read_yaml(str(path), path.read_text(encoding="utf-8"))
    return [source.problem(field, message) for field, message in refused]
