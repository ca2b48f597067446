"""China's official working-day calendar, as routing rules ask it.

China moves working days around public holidays (a Saturday can be a working day), so a
rule's "working day" means the State Council's schedule, not Monday-Friday. The built-in
schedule (the chinese_calendar package) only knows the years already announced, and each
next year is announced only weeks ahead. Admins therefore declare dates in
config/calendar.yaml, which wins over the built-in schedule. Where neither knows a date, the
statutory holidays are estimated from their rules (the `holidays` package: New Year, Spring
Festival, Qingming, Labour Day, Dragon Boat, Mid-Autumn and National Day from the lunar
calendar), so a New Year's Day or a Spring Festival week is never taken for working days; the
estimate does not know the adjusted working weekends of an announcement. Past the estimate's
years the fallback rule applies: Monday-Friday working, no public holidays. Every answer names
its source so traces, logs and `check` can show which of the four decided.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import chinese_calendar
import holidays
import yaml

from dialplan.errors import ConfigError, Problem
from dialplan.validation import unknown_key_hint
from dialplan.yaml_source import compose_yaml, read_config_text

FALLBACK_RULE = "Monday-Friday working, no public holidays"
ESTIMATE_RULE = "statutory holidays estimated by their rules, adjusted weekends unknown"
LIBRARY_LAST_YEAR: int = max(chinese_calendar.holidays).year

_NO_DATES: Mapping[date, str] = MappingProxyType({})


class Source(StrEnum):
    """Which schedule decided a day."""

    CONFIG = "config"
    LIBRARY = "library"
    ESTIMATED = "estimated"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class DayInfo:
    """What the official calendar says of one date.

    `holiday` is an official public-holiday day off; an ordinary weekend is a rest day but
    not a holiday. `name` is the holiday, or the holiday an adjusted working day makes up for.
    """

    date: date
    workday: bool
    holiday: bool
    name: str | None
    source: Source

    def __str__(self) -> str:
        kind = "holiday" if self.holiday else "workday" if self.workday else "restday"
        named = f": {self.name}" if self.name else ""
        rule = _RULES.get(self.source, "")
        return f"{self.date} {kind}{named} [{self.source}{rule}]"


_RULES = {Source.FALLBACK: f": {FALLBACK_RULE}", Source.ESTIMATED: f": {ESTIMATE_RULE}"}


def _monday_to_friday(d: date, source: Source) -> DayInfo:
    return DayInfo(d, workday=d.weekday() < 5, holiday=False, name=None, source=source)


def _from_library(d: date) -> DayInfo | None:
    """The built-in schedule's answer, or None for a year it does not know."""
    try:
        is_rest, name = chinese_calendar.get_holiday_detail(d)
    except NotImplementedError:
        return None
    holiday = is_rest and name is not None
    return DayInfo(d, workday=not is_rest, holiday=holiday, name=name, source=Source.LIBRARY)


@lru_cache(maxsize=16)
def _estimate_of(year: int) -> holidays.HolidayBase | None:
    """The rule-based statutory holidays of a year, or None beyond the rules' years."""
    if not holidays.CN.start_year <= year <= holidays.CN.end_year:
        return None
    return holidays.CN(years=year)


def _from_estimate(d: date) -> DayInfo | None:
    """The estimated answer: a statutory holiday by its rule, else Monday-Friday."""
    estimate = _estimate_of(d.year)
    if estimate is None:
        return None
    name = estimate.get(d)
    if name is not None:
        return DayInfo(d, workday=False, holiday=True, name=name, source=Source.ESTIMATED)
    if d in estimate.weekend_workdays:
        name = "adjusted working day"
        return DayInfo(d, workday=True, holiday=False, name=name, source=Source.ESTIMATED)
    return _monday_to_friday(d, Source.ESTIMATED)


class OfficialCalendar:
    """Answers `day(d)` from declared dates, then the built-in schedule, then the estimate of
    the statutory holidays, then the fallback.

    `covers` lists the years whose schedule is fully declared: their undeclared dates follow
    Monday-Friday with source "config", as the admins said so, rather than "fallback".
    Answers are cached per date because the evaluator asks on every call.
    """

    def __init__(
        self,
        holidays: Mapping[date, str] = _NO_DATES,
        workdays: Mapping[date, str] = _NO_DATES,
        covers: Iterable[int] = (),
    ) -> None:
        both = sorted(holidays.keys() & workdays.keys())
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"dates declared both holiday and workday: {listed}")
        self._holidays = dict(holidays)
        self._workdays = dict(workdays)
        self._covers = frozenset(covers)
        self._days: dict[date, DayInfo] = {}

    def day(self, d: date) -> DayInfo:
        """The official status of a local (Asia/Shanghai) date; any year is answered."""
        known = self._days.get(d)
        if known is None:
            known = self._days[d] = self._decide(d)
        return known

    def _decide(self, d: date) -> DayInfo:
        if isinstance(d, datetime):
            raise TypeError("pass the local date (now.date()), not a datetime")
        if d in self._holidays:
            name = self._holidays[d]
            return DayInfo(d, workday=False, holiday=True, name=name, source=Source.CONFIG)
        if d in self._workdays:
            name = self._workdays[d]
            return DayInfo(d, workday=True, holiday=False, name=name, source=Source.CONFIG)
        if d.year in self._covers:
            return _monday_to_friday(d, Source.CONFIG)
        return _from_library(d) or _from_estimate(d) or _monday_to_friday(d, Source.FALLBACK)

    def year(self, year: int) -> list[DayInfo]:
        """Every day of a year, in order, as `day()` answers it."""
        first = date(year, 1, 1)
        days = (date(year + 1, 1, 1) - first).days
        return [self.day(first + timedelta(days=offset)) for offset in range(days)]

    def estimated_holidays(self, year: int) -> list[DayInfo]:
        """The holiday days of a year that only the rule-based estimate gives."""
        return [
            info for info in self.year(year) if info.holiday and info.source is Source.ESTIMATED
        ]

    def covered_until(self) -> date:
        """Last date of the official schedule: the built-in years, extended by the declared
        years that follow them without a gap (a gap year would already fall back)."""
        year = LIBRARY_LAST_YEAR
        while year + 1 in self._covers:
            year += 1
        return date(year, 12, 31)

    def expiry_warning(self, today: date, horizon_days: int = 60) -> str | None:
        """A warning for `check` when the schedule ends within `horizon_days` of `today`."""
        last = self.covered_until()
        days_left = (last - today).days
        if days_left > horizon_days:
            return None
        when = (
            f"ended {last} ({-days_left} days ago)"
            if days_left < 0
            else f"ends {last} ({days_left} days left)"
        )
        missing = last.year + 1
        estimated = len(self.estimated_holidays(missing))
        after = (
            f"{estimated} statutory holiday days of {missing} are only estimated "
            f"(adjusted working weekends unknown) until then"
            if estimated
            else f"dates after {last} fall back to {FALLBACK_RULE}"
        )
        return (
            f"official calendar {when}: declare the {missing} schedule in the calendar file "
            f"(holidays, workdays, covers: [{missing}]); {after}"
        )


_TOP_LEVEL_KEYS = ("covers", "holidays", "workdays")
_KEYS = ", ".join(_TOP_LEVEL_KEYS)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"[1-9]\d{3}")
_NULL_TAG = "tag:yaml.org,2002:null"


def load_calendar(path: str | Path) -> OfficialCalendar:
    """Read the admins' declared schedule; a missing file declares nothing.

    Raises ConfigError listing every problem, each located by file and line; the file is
    read as plans are (dialplan.yaml_source), so a byte that is not UTF-8 or a YAML mistake
    is told in the same words, at its line and column.
    """
    path = Path(path)
    if not path.exists():
        return OfficialCalendar()
    return parse_calendar(str(path), read_config_text(path))


def parse_calendar(file: str, text: str) -> OfficialCalendar:
    """The calendar `text` declares, its problems told as of `file`."""
    return _CalendarFile(file).parse(text)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _written(node: yaml.Node) -> str:
    """A value as the admin wrote it, or what it is when it is not one value."""
    if _is_empty(node):
        return "nothing"
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _is_empty(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG


class _CalendarFile:
    """Walks the composed YAML nodes (which keep line numbers) and collects every problem."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, line: int, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, field, message))

    def parse(self, text: str) -> OfficialCalendar:
        root, syntax = compose_yaml(self.file, text)
        if syntax is not None:
            raise ConfigError([syntax])
        if root is None:
            return OfficialCalendar()
        if not isinstance(root, yaml.MappingNode):
            self.problem(_line(root), "(file)", f"a calendar file is a mapping of keys ({_KEYS})")
            raise ConfigError(self.problems)

        sections = self.sections(root)
        covers = self.covers(sections["covers"]) if "covers" in sections else []
        holidays = self.dates(sections["holidays"], "holidays") if "holidays" in sections else {}
        workdays = self.dates(sections["workdays"], "workdays") if "workdays" in sections else {}
        for d in sorted(holidays.keys() & workdays.keys()):
            self.problem(
                workdays[d][1],
                f"workdays.{d}",
                f"also declared a holiday at line {holidays[d][1]}; a date is one or the other",
            )
        if self.problems:
            raise ConfigError(sorted(self.problems, key=lambda problem: problem.line))
        return OfficialCalendar(
            holidays={d: name for d, (name, _) in holidays.items()},
            workdays={d: name for d, (name, _) in workdays.items()},
            covers=covers,
        )

    def sections(self, root: yaml.MappingNode) -> dict[str, yaml.Node]:
        found: dict[str, yaml.Node] = {}
        first_line: dict[str, int] = {}
        for key, value in root.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else "(file)"
            if name not in _TOP_LEVEL_KEYS:
                hint = unknown_key_hint(name, _TOP_LEVEL_KEYS)
                self.problem(_line(key), name, f"unknown key{hint}")
            elif name in found:
                self.problem(
                    _line(key),
                    name,
                    f"key given twice (first at line {first_line[name]}); only one may stand",
                )
            else:
                found[name] = value
                first_line[name] = _line(key)
        return found

    def covers(self, node: yaml.Node) -> list[int]:
        if _is_empty(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            found = node.value if isinstance(node, yaml.ScalarNode) else None
            hint = f" (found {found}: write [{found}])" if found else ", e.g. [2027]"
            self.problem(_line(node), "covers", f"expected a list of years{hint}")
            return []
        years = []
        for index, item in enumerate(node.value):
            if isinstance(item, yaml.ScalarNode) and _YEAR.fullmatch(item.value):
                years.append(int(item.value))
            else:
                found = f"found {_written(item)}"
                self.problem(_line(item), f"covers[{index}]", f"not a year like 2027 ({found})")
        return years

    def dates(self, node: yaml.Node, section: str) -> dict[date, tuple[str, int]]:
        """Declared dates with their name and line, the line kept to locate later problems."""
        if _is_empty(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.problem(_line(node), section, "expected lines of YYYY-MM-DD: name")
            return {}
        declared: dict[date, tuple[str, int]] = {}
        for key, value in node.value:
            text = key.value if isinstance(key, yaml.ScalarNode) else ""
            field = f"{section}.{text}" if text else section
            d = _parse_date(text)
            name = value.value.strip() if isinstance(value, yaml.ScalarNode) else ""
            if d is None:
                self.problem(_line(key), field, "not a date (YYYY-MM-DD)")
            elif d in declared:
                self.problem(_line(key), field, f"listed twice (first at line {declared[d][1]})")
            if _is_empty(value) or not name:
                self.problem(_line(value), field, "expected a name, e.g. New Year's Day")
            elif d is not None and d not in declared:
                declared[d] = (name, _line(key))
        return declared


def _parse_date(text: str) -> date | None:
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
