"""`hotline400 calendar [--year Y]`: one year of the official calendar as the router sees it.

Lists the holidays, the adjusted working weekends and the working days of a year with the
source of each (config, library, estimated, fallback), so an admin can compare it with the
State Council's announcement and copy the corrections into config/calendar.yaml; `--yaml`
prints the year in that file's form, ready to correct and paste.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from itertools import groupby
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.calendar import DayInfo, OfficialCalendar, Source, load_calendar
from dialplan.errors import ConfigError
from router.commands import arguments
from router.configuration.config_dir import CALENDAR_FILE

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "calendar", parents=[common], help="print a year's working days and holidays"
    )
    parser.add_argument(
        "--year",
        type=arguments.year,
        help="the year to print (default: this year in Asia/Shanghai)",
    )
    parser.add_argument(
        "--yaml", action="store_true", help="print the year in the calendar file's form"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Without this, a mistyped --config prints the library's dates as if they were declared.
    if not Path(args.config).is_dir():
        print(f"no configuration directory {args.config}", file=sys.stderr)
        return 1
    year = args.year if args.year is not None else datetime.now(ZoneInfo("Asia/Shanghai")).year
    path = Path(args.config) / CALENDAR_FILE
    try:
        calendar = load_calendar(path)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    lines = as_yaml(calendar, year) if args.yaml else as_table(calendar, year, path)
    for line in lines:
        print(line)
    return 0


def _holidays(days: Iterable[DayInfo]) -> list[DayInfo]:
    return [day for day in days if day.holiday]


def _adjusted_weekends(days: Iterable[DayInfo]) -> list[DayInfo]:
    return [day for day in days if day.workday and day.date.weekday() >= 5]


_SOURCE_WORDS = {
    Source.CONFIG: "declared in {path}",
    Source.LIBRARY: "the State Council's schedule, built in",
    Source.ESTIMATED: "estimated from the holidays' rules: not announced yet, declare it in {path}",
    Source.FALLBACK: "Monday-Friday, no public holidays: not announced yet, declare it in {path}",
}


def _year_sources(days: Iterable[DayInfo], path: Path) -> str:
    """Where the year's days come from, the first named the one most days come from: a
    year the file does not declare must not read as declared there."""
    counts = Counter(day.source for day in days)
    return "; ".join(_SOURCE_WORDS[source].format(path=path) for source, _ in counts.most_common())


def as_table(calendar: OfficialCalendar, year: int, path: Path) -> list[str]:
    """The year for reading: holidays, adjusted weekends, working days month by month."""
    days = calendar.year(year)
    holidays, adjusted = _holidays(days), _adjusted_weekends(days)
    width = max((len(day.name or "") for day in holidays + adjusted), default=0)
    lines = [f"official calendar {year} ({_year_sources(days, path)})", "holidays:"]
    lines.extend(_dated(day, width) for day in holidays)
    if not holidays:
        lines.append("  none")
    lines.append("adjusted working weekends:")
    lines.extend(_dated(day, width) for day in adjusted)
    if not adjusted:
        lines.append("  none known")
    lines.append("working days:")
    workdays = [day for day in days if day.workday]
    for month, in_month in groupby(workdays, key=lambda day: day.date.month):
        month_days = list(in_month)
        lines.append(
            f"  {year}-{month:02d} {len(month_days):2d}  {_ranges(month_days):<40} "
            f"{_sources(month_days)}"
        )
    counted = ", ".join(
        f"{source} {sum(day.source is source for day in days)}"
        for source in Source
        if any(day.source is source for day in days)
    )
    lines.append(
        f"{year}: {len(workdays)} working days, {len(holidays)} holidays, "
        f"{len(adjusted)} adjusted working weekend days; days by source: {counted}"
    )
    if any(day.source is Source.ESTIMATED for day in days):
        lines.append(
            "estimated: statutory holidays computed from their rules; the announcement's "
            "adjusted working weekends are unknown until declared in the calendar file"
        )
    return lines


def _dated(day: DayInfo, width: int) -> str:
    weekday = _WEEKDAYS[day.date.weekday()]
    return f"  {day.date} {weekday}  {day.name or '':<{width}}  {day.source}"


def _ranges(days: list[DayInfo]) -> str:
    """Days of the month as runs: 4-8, 11-15, 18."""
    runs: list[list[int]] = []
    for day in days:
        number = day.date.day
        if runs and runs[-1][-1] == number - 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def _sources(days: list[DayInfo]) -> str:
    return ", ".join(source for source in Source if any(day.source is source for day in days))


def as_yaml(calendar: OfficialCalendar, year: int) -> list[str]:
    """The year as calendar.yaml declares it: correct it against the announcement and paste."""
    days = calendar.year(year)
    holidays, adjusted = _holidays(days), _adjusted_weekends(days)
    lines = [f"# {year} as the router sees it now; check against the announcement"]
    lines.append(f"covers: [{year}]")
    lines.append("holidays:" if holidays else "holidays: {}")
    lines.extend(f"  {day.date}: {_yaml_text(day.name)}  # {day.source}" for day in holidays)
    lines.append("workdays:" if adjusted else "workdays: {}")
    lines.extend(f"  {day.date}: {_yaml_text(day.name)}  # {day.source}" for day in adjusted)
    return lines


def _yaml_text(name: str | None) -> str:
    text = name or "adjusted working day"
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
