"""`hotline400 check [PATH...]`: validate router.yaml, the calendar, tariffs, numbers.yaml
and plans, and the plans against the numbers' inventory in the routers' store.

Exit 0 when every file is clean, 1 with every problem listed as file:line field: message.
A config directory's tariffs.yaml is also compared with the last good copy the routers keep
in router.yaml's spool_dir, as a router starting now compares it: one they refuse, and keep
serving the copy for, is a problem.
Warnings (the official calendar running out, a plan of a number not in the inventory, a
number in service without a plan, menus the account does not pay for) do not fail the
check.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from dialplan.calendar import OfficialCalendar, load_calendar
from dialplan.errors import ConfigError, Problem
from dialplan.plan import Plan
from dialplan.plan_loader import load_plan
from dialplan.yaml_source import read_yaml
from rating.tariff import DEFAULT_TIMEZONE, Tariffs
from rating.tariff_loader import load_tariffs
from router.call.features import IVR, NO_IVR, feature_on
from router.commands.arguments import day
from router.configuration.config_dir import CALENDAR_FILE, TARIFFS_FILE, load_config
from router.configuration.directory_check import directory_problems, plan_file
from router.configuration.number_rules import NUMBERS_FILE, load_number_rules
from router.configuration.settings import ROUTER_FILE, load_settings
from router.configuration.tariff_takeover import refused_by_routers, refused_tariff_changes
from router.notifications.crm_address import Network, plan_problems
from router.numbers.plan_check import check_against_inventory


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("check", parents=[common], help="validate configuration files")
    parser.add_argument("paths", nargs="*", help="files or directories (default: --config DIR)")
    parser.add_argument(
        "--today",
        type=day,
        metavar="YYYY-MM-DD",
        help="check the calendar and --previous as of this date (default: today in the "
        "timezone of router.yaml beside the files checked, else of --config's)",
    )
    parser.add_argument(
        "--previous",
        type=Path,
        metavar="OLD_TARIFFS",
        help="the tariff file in force until now: refuse a number's minimum monthly "
        "consumption lowered against the rule (raised any time; lowered only with its "
        "charged rate, to the scaled minimum, and never once the number is in use by --today), "
        "and prices raised with less notice than price_rise_notice_days (30) before they "
        "take effect",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    targets = [Path(path) for path in args.paths] or [Path(args.config)]
    missing = [str(target) for target in targets if not target.exists()]
    if missing:
        print(f"nothing checked: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return 1
    problems: list[Problem] = []
    warnings: list[str] = []
    checked = 0
    days: list[tuple[Path, date, ZoneInfo]] = []
    for target in targets:
        zone = _billing_zone(target, Path(args.config))
        today = args.today or datetime.now(zone).date()
        days.append((target, today, zone))
        found, warned, count = _check_path(target, today, zone)
        problems.extend(found)
        warnings.extend(warned)
        checked += count
    if args.previous is not None:
        problems.extend(_tariff_changes(args.previous, days))
    for problem in problems:
        print(problem)
    for warning in warnings:
        print(f"warning: {warning}")
    verdict = f"{len(problems)} problem(s)" if problems else "ok"
    print(f"checked {checked} file(s): {verdict}")
    return 1 if problems else 0


def _billing_zone(target: Path, config_dir: Path) -> ZoneInfo:
    """The time zone `serve` reads `target` in: the `timezone` of the router.yaml of its
    directory, else of --config's; Asia/Shanghai without one (or when it does not load:
    its own problems are told when it is checked, and serve would not start on it)."""
    directory = target if target.is_dir() else target.parent
    for candidate in (directory, config_dir):
        if (candidate / ROUTER_FILE).is_file():
            try:
                return load_settings(candidate).zone()
            except ConfigError:
                break
    return ZoneInfo(DEFAULT_TIMEZONE)


def _check_path(path: Path, today: date, zone: ZoneInfo) -> tuple[list[Problem], list[str], int]:
    if path.is_dir() and (path / "plans").is_dir():
        config = refused_by_routers(load_config(path))
        count = len(_yaml_files(path / "plans")) + sum(
            (path / name).exists()
            for name in (ROUTER_FILE, CALENDAR_FILE, TARIFFS_FILE, NUMBERS_FILE)
        )
        found, warned = check_against_inventory(config, datetime.now(config.number_rules.zone))
        return (
            directory_problems(config, found),
            [
                *_calendar_warnings(config.calendar, path / CALENDAR_FILE, today),
                *warned,
                *_unpaid_menus(config.plans, config.tariffs, path, today),
                *(
                    warning
                    for number, plan in sorted(config.plans.items())
                    for warning in _down_forwards(plan, plan_file(path, number))
                ),
            ],
            count,
        )
    if path.is_dir():
        problems: list[Problem] = []
        files = _yaml_files(path)
        for file in files:
            problems.extend(_check_file(file, today, zone)[0])
        return problems, [], len(files)
    found, warned = _check_file(path, today, zone)
    return found, warned, 1


def _yaml_files(directory: Path) -> list[Path]:
    """The YAML files of a directory as the router's plan loader finds them: .yaml and .yml."""
    return [file for file in sorted(directory.glob("*.y*ml")) if file.suffix in (".yaml", ".yml")]


def _unpaid_menus(
    plans: Mapping[str, Plan], tariffs: Tariffs | None, path: Path, today: date
) -> list[str]:
    """Plans with menus their account does not have the ivr feature for (on `today`, in the
    plan's zone): their calls hear no menu and take each menu's default."""
    warnings = []
    for number, plan in sorted(plans.items()):
        now = datetime.combine(today, time(12), plan.zone())
        if plan.menus and not feature_on(plan, tariffs, IVR, now):
            warnings.append(
                f"{path / 'plans' / number}.yaml: its menus are not played, "
                f"{NO_IVR} in {TARIFFS_FILE}: calls take each menu's default"
            )
    return warnings


def _down_forwards(plan: Plan, plan_file: Path) -> list[str]:
    """Forwarding numbers the plan marks down elsewhere: not refused (taking a phone out of
    service is the point of `down`), but noted, as no call is forwarded to them."""
    paths = plan.down_forwards()
    if not paths:
        return []
    source = read_yaml(str(plan_file), plan_file.read_text(encoding="utf-8"))
    skipped = "is marked down: every call skips it, it is never dialled"
    return [str(source.problem(field, f"forward {number} {skipped}")) for field, number in paths]


def _check_file(path: Path, today: date, zone: ZoneInfo) -> tuple[list[Problem], list[str]]:
    try:
        if path.name == ROUTER_FILE:
            load_settings(path.parent)
        elif path.name == CALENDAR_FILE:
            return [], _calendar_warnings(load_calendar(path), path, today)
        elif path.name == TARIFFS_FILE:
            load_tariffs(path, zone)
        elif path.name == NUMBERS_FILE:
            load_number_rules(path, zone)
        else:
            plan = load_plan(path)
            text = path.read_text(encoding="utf-8")
            found = plan_problems(str(path), text, plan, _crm_networks_beside(path))
            return found, _down_forwards(plan, path)
    except ConfigError as error:
        return error.problems, []
    return [], []


def _crm_networks_beside(plan_file: Path) -> Sequence[Network]:
    """crm_allowed_networks of the router.yaml of a plan's config directory (plans/..),
    none without one (public addresses only)."""
    directory = plan_file.parent.parent
    if not (directory / ROUTER_FILE).is_file():
        return ()
    try:
        return load_settings(directory).crm_networks()
    except ConfigError:
        return ()  # its own problems are told when router.yaml is checked


def _calendar_warnings(calendar: OfficialCalendar, path: Path, today: date) -> list[str]:
    warning = calendar.expiry_warning(today)
    return [f"{path}: {warning}"] if warning else []


def _tariff_changes(
    previous: Path, targets: Sequence[tuple[Path, date, ZoneInfo]]
) -> list[Problem]:
    """Each checked tariffs.yaml against the previous file, taking over on its day (today
    in its billing zone): the minimum-consumption rule and the notice of price rises."""
    try:
        old = load_tariffs(previous, targets[0][2])
    except ConfigError as error:
        return error.problems
    problems: list[Problem] = []
    for target, today, zone in targets:
        path = target / TARIFFS_FILE if target.is_dir() else target
        if path.name != TARIFFS_FILE or not path.is_file():
            continue
        try:
            new = load_tariffs(path, zone)
        except ConfigError:
            continue  # its problems are listed already
        problems.extend(refused_tariff_changes(old, new, path, today))
    return problems
