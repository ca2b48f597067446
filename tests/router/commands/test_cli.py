"""The `hotline400` commands as an admin runs them, on config directories written for each test."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from dialplan.pin import verify_pin
from dialplan.plan_loader import load_plan
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules
from router.cli import COMMANDS, build_parser, command_named, main
from router.commands.arguments import TIME_FORMS, moment
from router.configuration.plan_book import PlanBook
from router.numbers.inventory import Inventory
from tests.conftest import REPO, UNWATCHED, at, opened_store

Capture = pytest.CaptureFixture[str]

SHIPPED_CONFIG = REPO / "config"
CALENDAR_WARNING = (
    "official calendar ends 2026-12-31 (38 days left): declare the 2027 schedule in the "
    "calendar file (holidays, workdays, covers: [2027]); 19 statutory holiday days of 2027 are "
    "only estimated (adjusted working weekends unknown) until then"
)
ISSUE_EXAMPLE = ("--number", "4006001234", "--caller", "053188889999", "--at", "2026-10-01 09:30")
JINAN_HEADER = (
    "call to 4006001234 (Jinan Heavy Machinery Co. (济南重工机械)) "
    "from 053188889999 (山东/济南/0531) at {stamp} CST"
)


def checked_files(config_dir: Path) -> int:
    """How many files `check` reads in a config directory: router.yaml, calendar.yaml,
    tariffs.yaml, numbers.yaml, plans."""
    settings = ("router.yaml", "calendar.yaml", "tariffs.yaml", "numbers.yaml")
    assert all((config_dir / name).exists() for name in settings)
    return len(settings) + len(list((config_dir / "plans").glob("*.yaml")))


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped config directory, free to break."""
    return Path(shutil.copytree(SHIPPED_CONFIG, tmp_path / "config"))


def hotline400(capsys: Capture, *argv: str) -> tuple[int, list[str]]:
    """Run one command in-process; its exit code and the lines it printed."""
    code = main(list(argv))
    return code, capsys.readouterr().out.splitlines()


def line_of(path: Path, text: str) -> int:
    """The line (1-based) where `text` first appears in a file."""
    content = path.read_text(encoding="utf-8")
    assert text in content
    return content[: content.index(text)].count("\n") + 1


def break_file(path: Path, old: str, new: str) -> int:
    """Replace `old` by `new` in a file; the line of the change."""
    line = line_of(path, old)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    return line


def break_lanhua_plan(config_dir: Path) -> tuple[Path, list[str]]:
    """Three mistakes in the shop's plan; the file and the lines `check` must print for them."""
    plan = config_dir / "plans" / "4008207788.yaml"
    typo = break_file(plan, "ring_timeout: 20\n", "ring_timout: 20\n")
    window = break_file(plan, '["23:00-07:00"]', '["23:00-07:60"]')
    break_file(plan, "percent: 10,", "percent: 20,")
    split = line_of(plan, "split:")
    return plan, [
        f"{plan}:{typo} ring_timout: unknown key (did you mean ring_timeout?)",
        f"{plan}:{window} rules[1].when.time: '23:00-07:60' is not a window like '09:00-18:00'",
        f"{plan}:{split} menus.main.default.split: percentages sum to 110, must be 100",
    ]


def break_router_settings(config_dir: Path) -> tuple[Path, list[str]]:
    """Four mistakes in router.yaml; the file and the lines `check` must print for them."""
    path = config_dir / "router.yaml"
    listen = break_file(path, "listen: 127.0.0.1:4573", 'listen: "localhost"')
    peers = break_file(path, "allowed_peers: [", 'allowed_peers: ["not-a-net", ')
    timeout = break_file(path, "header_timeout: 5", "header_timeout: 0")
    typo = break_file(path, "watch_plans:", "watchplans:")
    return path, [
        f"{path}:{listen} listen: 'localhost' is not HOST:PORT",
        f"{path}:{peers} allowed_peers: 'not-a-net' is not an address or network",
        f"{path}:{timeout} header_timeout: must be greater than 0 (found 0)",
        f"{path}:{typo} watchplans: unknown key (did you mean watch_plans?)",
    ]


def write_broken_calendar(config_dir: Path) -> tuple[Path, list[str]]:
    """A calendar file with three mistakes, and the lines `check` must print for them."""
    path = config_dir / "calendar.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            covers: [2027, next]
            holidays:
              2027-01-01: New Year's Day
              2027-02-30: Spring Festival
            workdays:
              2027-01-01: adjusted working day
            """
        ),
        encoding="utf-8",
    )
    return path, [
        f"{path}:1 covers[1]: not a year like 2027 (found next)",
        f"{path}:4 holidays.2027-02-30: not a date (YYYY-MM-DD)",
        f"{path}:6 workdays.2027-01-01: also declared a holiday at line 3; "
        "a date is one or the other",
    ]


# --- check ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_loads_alone_under_its_own_name(name: str) -> None:
    [commands] = [action for action in build_parser(name)._actions if action.dest == "command"]
    assert list(commands.choices) == [name]


def test_the_command_word_is_the_first_argument_that_is_not_an_option() -> None:
    assert command_named(["--version"]) is None
    assert command_named(["serve", "--config", "check"]) == "serve"
    assert command_named(["-h", "calendar", "--year", "2027"]) == "calendar"


def test_help_lists_every_command(capsys: Capture) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert all(f"    {name} " in listed or f"    {name}\n" in listed for name in COMMANDS)


def options_of(parser: argparse.ArgumentParser, words: str) -> Iterator[tuple[str, Any]]:
    """Every option of a command and of its actions, with the command line naming it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from options_of(sub, f"{words} {name}")
        else:
            yield words, action


def commands_of(parser: argparse.ArgumentParser, words: str) -> Iterator[tuple[str, Any, str]]:
    """Every command and action under `parser`: its command line, its parser and the line
    its parent's --help lists it with."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{words} {name}", sub, listed[name]
                yield from commands_of(sub, f"{words} {name}")


def test_every_commands_help_says_what_it_does(capsys: Capture) -> None:
    """`hotline400 bill --help` opens with what `hotline400 --help` says bill does, as
    `hotline400 account topup --help` with what `account --help` says of it, unless the
    command words it at more length itself."""
    found = list(commands_of(build_parser(), "hotline400"))
    untold = [
        words
        for words, parser, listed in found
        if listed.casefold() not in " ".join(parser.format_help().split()).casefold()
        and not parser.description
    ]
    assert untold == []
    assert len(found) > len(COMMANDS)  # the actions of account, numbers, ... too
    with pytest.raises(SystemExit):
        main(["account", "topup", "--help"])
    assert capsys.readouterr().out.splitlines()[5] == "Book a payment."


@pytest.mark.parametrize(
    "name",
    [
        "account",
        "db",
        "numbers",
        "providers",
        "users",
        "webhooks",
        "sms",
        "low-balance",
        "recordings",
    ],
)
def test_a_command_of_actions_names_its_missing_action_as_every_other_does(
    capsys: Capture, name: str
) -> None:
    """As `hotline400` alone asks for a COMMAND, each command of several actions asks for
    an ACTION, in its usage and when none is given."""
    with pytest.raises(SystemExit) as refused:
        main([name])
    assert refused.value.code == 2
    assert capsys.readouterr().err == (
        f"hotline400 {name}: the following arguments are required: ACTION "
        f"(see hotline400 {name} --help)\n"
    )
    with pytest.raises(SystemExit):
        main([name, "--help"])
    assert capsys.readouterr().out.startswith(f"usage: hotline400 {name} [-h] ACTION ...\n")


def test_every_option_taking_a_time_names_the_forms_it_is_written_in() -> None:
    """Every command reads a time the same way (a day, a local time, ISO 8601 with an
    offset), so every --at, --since and --until says so, not one form in one and two in
    another."""
    timed = [
        (words, action)
        for words, action in options_of(build_parser(), "hotline400")
        if action.type is moment
    ]
    assert {words for words, _ in timed} >= {
        "hotline400 cdr",
        "hotline400 simulate",
        "hotline400 account topup",
        "hotline400 numbers show",
    }
    unnamed = [
        f"{words} {action.option_strings[0]}: {action.help}"
        for words, action in timed
        if TIME_FORMS not in action.help
    ]
    assert unnamed == []


def test_check_passes_the_shipped_config(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert code == 0
    assert lines == [f"checked {checked_files(config_dir)} file(s): ok"]


def test_check_warns_when_the_official_calendar_ends_within_60_days(
    capsys: Capture, config_dir: Path
) -> None:
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-11-23")
    assert code == 0
    assert lines == [
        f"warning: {config_dir / 'calendar.yaml'}: {CALENDAR_WARNING}",
        f"checked {checked_files(config_dir)} file(s): ok",
    ]


def test_check_lists_every_problem_of_a_broken_plan_with_file_line_and_field(
    capsys: Capture, config_dir: Path
) -> None:
    _, expected = break_lanhua_plan(config_dir)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert code == 1
    assert lines == [*expected, f"checked {checked_files(config_dir)} file(s): 3 problem(s)"]


def test_check_refuses_a_crm_url_on_a_private_address_unless_the_operator_allows_it(
    capsys: Capture, config_dir: Path
) -> None:
    """A subscriber's crm.url pointing at the router's loopback is refused with its file,
    line and field; the operator's crm_allowed_networks lets an on-premises CRM in."""
    plan = config_dir / "plans" / "4008207788.yaml"
    line = break_file(plan, "https://crm.lanhua.example", "http://127.0.0.1:8080")
    argv = ("check", "--config", str(config_dir), "--today", "2026-06-01")
    code, lines = hotline400(capsys, *argv)
    assert code == 1
    assert (
        f"{plan}:{line} crm.url: 127.0.0.1 is not a public address: call events go only"
        in (lines[0])
    )
    assert lines[0].endswith("networks the operator lists in crm_allowed_networks (router.yaml)")
    code, lines = hotline400(capsys, "check", str(plan))
    assert code == 1 and lines[0].startswith(f"{plan}:{line} crm.url: 127.0.0.1 is not")
    with (config_dir / "router.yaml").open("a", encoding="utf-8") as out:
        out.write("crm_allowed_networks: [127.0.0.0/8]\n")
    code, lines = hotline400(capsys, *argv)
    assert code == 0, lines
    assert hotline400(capsys, "check", str(plan))[0] == 0


def test_check_validates_router_settings(capsys: Capture, config_dir: Path) -> None:
    _, expected = break_router_settings(config_dir)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert code == 1
    assert lines == [*expected, f"checked {checked_files(config_dir)} file(s): 4 problem(s)"]


def test_check_names_the_line_of_a_bad_pin_guard_setting(capsys: Capture, config_dir: Path) -> None:
    path = config_dir / "router.yaml"
    negative = break_file(path, "max_failed_calls: 5", "max_failed_calls: -1")
    typo = break_file(path, "  block: 3600", "  blocked: 3600")
    code, lines = hotline400(capsys, "check", str(path))
    assert code == 1
    assert lines == [
        f"{path}:{negative} pin_guard.max_failed_calls: must be greater than or equal to 0"
        " (found -1)",
        f"{path}:{typo} pin_guard.blocked: unknown key (did you mean block?)",
        "checked 1 file(s): 2 problem(s)",
    ]


def test_check_refuses_a_low_balance_secret_that_names_no_environment_variable(
    capsys: Capture, config_dir: Path
) -> None:
    """The key itself never goes in router.yaml: only the name of the variable holding it."""
    path = config_dir / "router.yaml"
    with path.open("a", encoding="utf-8") as out:
        out.write("low_balance_webhook_secret_env: s3cret-key\n")
    code, lines = hotline400(capsys, "check", str(path))
    assert code == 1
    assert lines[0].startswith(f"{path}:")
    assert "low_balance_webhook_secret_env: " in lines[0] and "s3cret-key" in lines[0]


def test_check_validates_the_declared_calendar(capsys: Capture, config_dir: Path) -> None:
    _, expected = write_broken_calendar(config_dir)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert code == 1
    assert lines == [*expected, f"checked {checked_files(config_dir)} file(s): 3 problem(s)"]


def previous_tariffs(config_dir: Path) -> Path:
    """The shipped tariffs kept aside as the file in force until now."""
    previous = config_dir.parent / "previous-tariffs.yaml"
    shutil.copy(config_dir / "tariffs.yaml", previous)
    return previous


def check_against(capsys: Capture, config_dir: Path, previous: Path, today: str):
    return hotline400(
        capsys,
        "check",
        str(config_dir / "tariffs.yaml"),
        "--previous",
        str(previous),
        "--today",
        today,
    )


def test_check_previous_lets_the_seeds_case_lower_a_minimum_with_the_charged_rate(
    capsys: Capture, config_dir: Path
) -> None:
    """Seed: nationwide 0.20 -> 0.10 with the minimum 500 -> 250, for a number not yet in
    use (Lanhua's account opens after the change)."""
    tariffs = config_dir / "tariffs.yaml"
    tariffs.write_text(tariffs.read_text().replace("opened: 2025-06-01", "opened: 2027-01-01"))
    previous = previous_tariffs(config_dir)
    text = tariffs.read_text()
    tariffs.write_text(
        text.replace(
            "nationwide: {per_seconds: 60, charge: 0.20}",
            "nationwide: {per_seconds: 60, charge: 0.10}",
        ).replace("minimum_monthly: 500.00", "minimum_monthly: 250.00")
    )
    assert check_against(capsys, config_dir, previous, "2026-11-20") == (
        0,
        ["checked 1 file(s): ok"],
    )
    tariffs.write_text(
        tariffs.read_text().replace("minimum_monthly: 250.00", "minimum_monthly: 249.99")
    )
    code, lines = check_against(capsys, config_dir, previous, "2026-11-20")
    assert code == 1
    assert lines == [
        f"{tariffs}:{line_of(tariffs, 'package: nationwide-300')} accounts.4008207788.package: "
        "4008207788: minimum monthly consumption 500.00 -> 249.99 refused: with the rate "
        "0.20/min -> 0.10/min the minimum may go down to 500.00 / 0.20 * 0.10 = 250.00, "
        "never lower",
        "checked 1 file(s): 1 problem(s)",
    ]


def test_check_previous_keeps_the_minimum_of_a_number_in_use(
    capsys: Capture, config_dir: Path
) -> None:
    tariffs = config_dir / "tariffs.yaml"
    previous = previous_tariffs(config_dir)
    cheaper = (
        tariffs.read_text()
        .replace(
            "nationwide: {per_seconds: 60, charge: 0.20}",
            "nationwide: {per_seconds: 60, charge: 0.10}",
        )
        .replace("minimum_monthly: 500.00", "minimum_monthly: 250.00")
    )
    tariffs.write_text(cheaper)
    code, lines = check_against(capsys, config_dir, previous, "2026-11-20")
    assert code == 1
    assert lines[0].endswith(
        "4008207788: minimum monthly consumption 500.00 -> 250.00 refused: a number already "
        "in use keeps its minimum (in use since 2025-06-01; rate 0.20/min -> 0.10/min)"
    )
    tariffs.write_text(
        cheaper.replace(
            "    package: nationwide-300\n",
            "    package: nationwide-300\n    minimum_monthly: 500.00\n",
        )
    )
    assert check_against(capsys, config_dir, previous, "2026-11-20")[0] == 0


def test_check_previous_refuses_a_lower_minimum_at_an_unchanged_charged_rate(
    capsys: Capture, config_dir: Path
) -> None:
    tariffs = config_dir / "tariffs.yaml"
    previous = previous_tariffs(config_dir)
    tariffs.write_text(
        tariffs.read_text().replace(
            "    package: business-hall\n",
            "    package: business-hall\n    minimum_monthly: 80.00\n",
        )
    )
    previous.write_text(
        tariffs.read_text().replace("minimum_monthly: 80.00", "minimum_monthly: 100.00")
    )
    code, lines = check_against(capsys, config_dir, previous, "2026-02-01")  # before it opened
    assert code == 1
    assert lines[0] == (
        f"{tariffs}:{line_of(tariffs, 'minimum_monthly: 80.00')} "
        "accounts.4001234567.minimum_monthly: 4001234567: minimum monthly consumption "
        "100.00 -> 80.00 refused: at an unchanged rate (rate 0.60/min -> 0.60/min) the "
        "minimum may be raised, never lowered"
    )


def test_check_previous_checks_a_move_to_a_package_without_a_minimum(
    capsys: Capture, config_dir: Path
) -> None:
    tariffs = config_dir / "tariffs.yaml"
    previous = previous_tariffs(config_dir)
    tariffs.write_text(
        tariffs.read_text().replace(
            '  "4008207788":     # Lanhua Online Shop, home area 021\n    package: nationwide-300',
            '  "4008207788":     # Lanhua Online Shop, home area 021\n    package: business-hall',
        )
    )
    code, lines = check_against(capsys, config_dir, previous, "2026-11-20")
    assert code == 1
    assert (
        "4008207788: minimum monthly consumption 500.00 -> 0.00 "
        "(package nationwide-300 -> business-hall) refused" in lines[0]
    )


def test_check_previous_refuses_a_price_raised_without_30_days_notice(
    capsys: Capture, config_dir: Path
) -> None:
    """Seed 004: a rise takes effect at least 30 days after it is announced."""
    tariffs = config_dir / "tariffs.yaml"
    previous = previous_tariffs(config_dir)
    text = tariffs.read_text()
    tariffs.write_text(text.replace("monthly_rent: 300.00", "monthly_rent: 320.00"))
    code, lines = check_against(capsys, config_dir, previous, "2026-12-05")
    assert code == 1
    assert lines == [
        f"{tariffs}:{line_of(tariffs, 'nationwide-300:')} packages.nationwide-300: 4008207788: "
        "prices of nationwide-300 raised from 2026-12-05 (monthly rent 300.00 -> 320.00) "
        "refused: a price rise takes effect at least 30 days after it is announced; this one "
        "0 day(s) after (announced 2026-12-05, effective 2026-12-05); give the new prices as "
        "a change with announced: and effective:",
        "checked 1 file(s): 1 problem(s)",
    ]
    announced = text.replace(
        "    minimum_monthly: 500.00\n",
        "    minimum_monthly: 500.00\n    changes:\n      - announced: 2026-12-05\n"
        "        effective: 2027-01-04\n        monthly_rent: 320.00\n",
    )
    tariffs.write_text(announced)
    assert check_against(capsys, config_dir, previous, "2026-12-05") == (
        0,
        ["checked 1 file(s): ok"],
    )
    code, lines = check_against(capsys, config_dir, previous, "2026-12-06")  # a day late
    assert code == 1
    assert lines[0].startswith(
        f"{tariffs}:{line_of(tariffs, 'effective: 2027-01-04')} "
        "packages.nationwide-300.changes[0].effective: 4008207788: prices of nationwide-300 "
        "raised from 2027-01-04 (monthly rent 300.00 -> 320.00) refused"
    )


def test_check_config_refuses_tariffs_as_a_starting_router_does_against_its_last_good_copy(
    capsys: Capture, config_dir: Path, tmp_path: Path
) -> None:
    """A rent raised without notice parses, but a router started now refuses it against the
    last good copy in router.yaml's spool_dir and keeps charging the copy's prices: `check
    --config DIR` lists that refusal as the router words it. Without a copy, nothing to
    compare with: the file is checked alone, as before."""
    router = config_dir / "router.yaml"
    last_good = tmp_path / "spool" / "last-good"
    break_file(router, "spool_dir: var/spool", f"spool_dir: {last_good.parent}")
    tariffs = config_dir / "tariffs.yaml"
    clean = tariffs.read_text()
    raised = clean.replace("monthly_rent: 300.00", "monthly_rent: 320.00")
    tariffs.write_text(raised)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir))
    assert (code, lines[-1]) == (0, f"checked {checked_files(config_dir)} file(s): ok")

    tariffs.write_text(clean)
    assert PlanBook(config_dir, ZoneInfo("Asia/Shanghai"), last_good).reload().ok
    tariffs.write_text(raised)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    code, lines = hotline400(capsys, "check", "--config", str(config_dir))
    assert code == 1
    refusal = (
        f"{tariffs}:{line_of(tariffs, 'nationwide-300:')} packages.nationwide-300: 4008207788: "
        f"prices of nationwide-300 raised from {today} (monthly rent 300.00 -> 320.00) "
        "refused: a price rise takes effect at least 30 days after it is announced; this one "
        f"0 day(s) after (announced {today}, effective {today}); give the new prices as a "
        "change with announced: and effective:"
    )
    assert lines[0] == refusal
    assert lines[-1] == f"checked {checked_files(config_dir)} file(s): 1 problem(s)"
    started = PlanBook(config_dir, ZoneInfo("Asia/Shanghai"), last_good).reload()
    assert [str(problem) for problem in started.problems] == [refusal], "the router's words"
    assert (last_good / "tariffs.yaml").read_text() == clean, "the copy serves"


def zone_on_another_day() -> str:
    """A time zone whose date now is not Shanghai's: 20 hours behind it before 20:00 there,
    6 hours ahead from 18:00 on."""
    shanghai = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    return next(
        zone
        for zone in ("Etc/GMT+12", "Pacific/Kiritimati")
        if datetime.now(ZoneInfo(zone)).date() != shanghai
    )


@pytest.mark.parametrize("router_yaml", ["beside the file", "in --config"])
def test_check_of_a_tariff_file_takes_today_in_the_routers_time_zone(
    capsys: Capture, config_dir: Path, tmp_path: Path, router_yaml: str
) -> None:
    """`check tariffs.yaml` reads the file as `serve --config` of its directory does: the
    price rise is refused from today in router.yaml's time zone, not in Shanghai's."""
    zone = zone_on_another_day()
    router = config_dir / "router.yaml"
    router.write_text(router.read_text().replace("timezone: Asia/Shanghai", f"timezone: {zone}"))
    previous = previous_tariffs(config_dir)
    tariffs = config_dir / "tariffs.yaml"
    if router_yaml == "in --config":
        tariffs = Path(shutil.copy(tariffs, tmp_path / "tariffs.yaml"))
    tariffs.write_text(tariffs.read_text().replace("monthly_rent: 300.00", "monthly_rent: 320.00"))
    # beside the file, it is preferred to --config's (./config when not given: Shanghai's)
    config = ("--config", str(config_dir)) if router_yaml == "in --config" else ()
    today = datetime.now(ZoneInfo(zone)).date()
    code, lines = hotline400(capsys, "check", str(tariffs), "--previous", str(previous), *config)
    assert code == 1
    assert f"raised from {today} (monthly rent 300.00 -> 320.00)" in lines[0]
    assert f"(announced {today}, effective {today})" in lines[0]


def test_check_reports_problems_of_every_file_in_one_run(capsys: Capture, config_dir: Path) -> None:
    _, router_problems = break_router_settings(config_dir)
    _, calendar_problems = write_broken_calendar(config_dir)
    _, plan_problems = break_lanhua_plan(config_dir)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert code == 1
    assert lines == [
        *router_problems,
        *calendar_problems,
        *plan_problems,
        f"checked {checked_files(config_dir)} file(s): 10 problem(s)",
    ]


def test_check_of_one_clean_plan_file(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(capsys, "check", str(config_dir / "plans" / "4006001234.yaml"))
    assert code == 0
    assert lines == ["checked 1 file(s): ok"]


def test_check_of_one_broken_plan_file(capsys: Capture, config_dir: Path) -> None:
    plan, expected = break_lanhua_plan(config_dir)
    code, lines = hotline400(capsys, "check", str(plan))
    assert code == 1
    assert lines == [*expected, "checked 1 file(s): 3 problem(s)"]


def test_check_of_a_router_file_validates_it_as_settings(capsys: Capture, config_dir: Path) -> None:
    path, expected = break_router_settings(config_dir)
    code, lines = hotline400(capsys, "check", str(path))
    assert code == 1
    assert lines == [*expected, "checked 1 file(s): 4 problem(s)"]


def test_check_of_a_calendar_file_validates_it_and_warns_of_its_end(
    capsys: Capture, config_dir: Path
) -> None:
    calendar = config_dir / "calendar.yaml"
    code, lines = hotline400(capsys, "check", str(calendar), "--today", "2026-11-23")
    assert code == 0
    assert lines == [f"warning: {calendar}: {CALENDAR_WARNING}", "checked 1 file(s): ok"]

    _, expected = write_broken_calendar(config_dir)
    code, lines = hotline400(capsys, "check", str(calendar), "--today", "2026-11-23")
    assert code == 1
    assert lines == [*expected, "checked 1 file(s): 3 problem(s)"]


def test_check_of_a_plans_directory_checks_each_plan(capsys: Capture, config_dir: Path) -> None:
    _, expected = break_lanhua_plan(config_dir)
    code, lines = hotline400(capsys, "check", str(config_dir / "plans"))
    assert code == 1
    plans = len(list((config_dir / "plans").glob("*.yaml")))
    assert lines == [*expected, f"checked {plans} file(s): 3 problem(s)"]


def test_check_reads_a_plan_written_as_yml_as_the_router_does(
    capsys: Capture, config_dir: Path
) -> None:
    """The router loads plans/N.yml as well as N.yaml: check reads and counts it too, given
    the configuration directory or only its plans directory."""
    shop = (config_dir / "plans" / "4006001234.yaml").read_text(encoding="utf-8")
    plan = config_dir / "plans" / "4009999999.yml"
    shop = shop.replace("4006001234", "4009999999").replace("timeout: 20", "timeout: 2000")
    plan.write_text(shop, encoding="utf-8")
    problem = f"{plan}:8 ring_timeout: must be less than or equal to 120 (found 2000)"

    code, lines = hotline400(capsys, "check", str(config_dir / "plans"))
    assert code == 1
    assert lines == [problem, "checked 4 file(s): 1 problem(s)"]

    code, lines = hotline400(capsys, "check", str(config_dir), "--today", "2026-06-01")
    assert code == 1
    assert lines == [problem, f"checked {checked_files(config_dir) + 1} file(s): 1 problem(s)"]


def test_check_warns_of_menus_the_account_does_not_pay_for(
    capsys: Capture, config_dir: Path
) -> None:
    tariffs = config_dir / "tariffs.yaml"
    paid = tariffs.read_text(encoding="utf-8")
    tariffs.write_text(paid.replace("      ivr: 2025-06-01\n", ""), encoding="utf-8")
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-11-23")
    assert code == 0
    assert (
        f"warning: {config_dir}/plans/4008207788.yaml: its menus are not played, the account "
        "has no ivr feature in tariffs.yaml: calls take each menu's default"
    ) in lines


def test_check_of_a_missing_path_checks_nothing(capsys: Capture, tmp_path: Path) -> None:
    missing = tmp_path / "4009999999.yaml"
    assert main(["check", str(missing)]) == 1
    assert capsys.readouterr() == ("", f"nothing checked: no such file or directory: {missing}\n")


# --- simulate ------------------------------------------------------------------------------


def test_simulate_prints_the_trace_and_the_dial_attempts(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(capsys, "simulate", "--config", str(config_dir), *ISSUE_EXAMPLE)
    assert code == 0
    holiday = "2026-10-01 holiday: National Day [library] vs cn_workday"
    assert lines == [
        JINAN_HEADER.format(stamp="Thu 2026-10-01 09:30"),
        "usage (postpaid): 2026-10 cost 0.00 in 0 call(s), today's cost 0.00",
        "trace:",
        f"  rule 0 'shandong-factory': no: Thu 2026-10-01 09:30 does not fit: {holiday}",
        f"  rule 1 'national-sales': no: Thu 2026-10-01 09:30 does not fit: {holiday}",
        "  rule 2 'night-duty': no: Thu 2026-10-01 09:30 is outside 18:00-08:00",
        "  default route: matched -> dial 13905310001",
        "  1. dial 13905310001, ring 20 s -> ANSWER",
        "outcome: answered (rule default)",
    ]


def test_simulate_follows_a_busy_destination_to_its_busy_forward(
    capsys: Capture, config_dir: Path
) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        *ISSUE_EXAMPLE,
        "--busy",
        "13905310001",
    )
    assert code == 0
    assert lines[-3:] == [
        "  1. dial 13905310001, ring 20 s -> BUSY",
        "  2. forward (busy) 053188886667, ring 20 s -> ANSWER",
        "outcome: answered (rule default)",
    ]


def test_simulate_chains_busy_and_no_answer_forwards(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        "--number",
        "4006001234",
        "--caller",
        "053188889999",
        "--at",
        "2026-10-09 09:30",
        "--busy",
        "0531-8888 6666",
        "--no-answer",
        "053188886667",
    )
    assert code == 0
    assert lines == [
        JINAN_HEADER.format(stamp="Fri 2026-10-09 09:30"),
        "usage (postpaid): 2026-10 cost 0.00 in 0 call(s), today's cost 0.00",
        "trace:",
        "  rule 0 'shandong-factory': matched -> dial 053188886666",
        "  survey: caller is asked for a score 1-5 once the answered call ends (while the "
        "account has the satisfaction_survey feature on)",
        "survey: once an answered call's destination hangs up (Dial's g), "
        "jinan/rate-the-service asks for a score 1-5, 2 attempt(s) of 6 s",
        "  1. dial 053188886666, ring 25 s -> BUSY",
        "  2. forward (busy) 053188886667, ring 25 s -> NOANSWER",
        "  3. forward (no_answer) 13905310001, ring 25 s -> ANSWER",
        "outcome: answered (rule shandong-factory)",
    ]


def test_simulate_ends_the_call_when_no_forward_is_left(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        *ISSUE_EXAMPLE,
        "--no-answer",
        "13905310001",
    )
    assert code == 0
    assert lines[-2:] == [
        "  1. dial 13905310001, ring 20 s -> NOANSWER",
        "outcome: noanswer (rule default)",
    ]


def take_the_busy_forward_out_of_service(config_dir: Path) -> Path:
    """The Jinan plan with its busy forward 053188886667 marked down as a default share."""
    plan = config_dir / "plans" / "4006001234.yaml"
    text = plan.read_text(encoding="utf-8")
    down = (
        'default:\n  split:\n    - {number: "13905310001", percent: 99}\n'
        '    - {number: "053188886667", percent: 1, down: true}\n'
    )
    plan.write_text(text.replace('default:\n  target: "13905310001"\n', down), encoding="utf-8")
    return plan


def test_simulate_skips_a_forward_the_plan_marks_down_and_says_so(
    capsys: Capture, config_dir: Path
) -> None:
    take_the_busy_forward_out_of_service(config_dir)
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        *ISSUE_EXAMPLE,
        "--busy",
        "13905310001",
    )
    assert code == 0
    assert lines[-3:] == [
        "  1. dial 13905310001, ring 20 s -> BUSY",
        "  forward 053188886667 skipped: down",
        "outcome: busy (rule default)",
    ]


def test_check_notes_a_forward_number_marked_down_without_refusing_the_plan(
    capsys: Capture, config_dir: Path
) -> None:
    plan = take_the_busy_forward_out_of_service(config_dir)
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-11-23")
    assert code == 0 and lines[-1].endswith(": ok")
    noted = "053188886667 is marked down: every call skips it, it is never dialled"
    for field in ("forwarding.on_busy[0]", "rules[2].forwarding.on_busy[0]"):
        written = "\n  on_busy:" if field[0] == "f" else "\n      on_busy:"  # the rule's
        line = line_of(plan, written) + 1
        assert f"warning: {plan}:{line} {field}: forward {noted}" in lines
    code, lines = hotline400(capsys, "check", str(plan))
    assert code == 0 and lines[-1] == "checked 1 file(s): ok"
    assert len([line for line in lines if "is marked down" in line]) == 2


def test_simulate_shows_the_pin_prompt_a_route_asks_for(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        "--number",
        "4001234567",
        "--caller",
        "13926001111",
        "--at",
        "2026-10-01 21:30",
    )
    assert code == 0
    assert lines[-7:] == [
        "  rule 1 'duty-doctor': matched -> dial 13926005678",
        "  pin: caller must enter the PIN first",
        "  recording: caller hears the recording notice unanswered; the call is recorded once "
        "answered (while the account has the recording feature on)",
        "PIN: the caller is asked for the PIN, 3 attempts",
        "recording: renhe/call-recorded played unanswered, then the answered call recorded",
        "  1. dial 13926005678, ring 25 s -> ANSWER",
        "outcome: answered (rule duty-doctor)",
    ]


def test_simulate_asks_no_score_the_account_has_not_switched_the_survey_on(
    capsys: Capture, config_dir: Path
) -> None:
    """4008207788's plan has a survey, its account no satisfaction_survey feature: the router
    asks nothing after the call, and simulate says so instead of showing the prompt."""
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        "--number",
        "4008207788",
        "--caller",
        "13801651234",
        "--at",
        "2026-11-23 11:00",
    )
    assert code == 0
    assert lines[-3:] == [
        "survey: none, the account has no satisfaction_survey feature that day",
        "  1. dial 02155550001, ring 20 s -> ANSWER",
        "outcome: answered (rule vip-customers)",
    ]
    assert not any("rate-our-service" in line for line in lines)


def test_simulate_says_when_it_cannot_read_the_store(capsys: Capture, config_dir: Path) -> None:
    """A store file that is no database: the router connects without limits and without the
    inventory's word on the number; simulate says what it left out, capped or not."""
    broken = config_dir / "broken.db"
    broken.write_text("not a database\n", encoding="utf-8")
    router_yaml = config_dir / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    router_yaml.write_text(re.sub(r"(?m)^database: .*$", f"database: {broken}", text))
    at = ("--at", "2026-11-24 11:00")
    unread = "(DatabaseError: file is not a database)"
    simulate = ("simulate", "--config", str(config_dir))
    shop = ("--number", "4008207788", "--caller", "13801650000")
    code, capped = hotline400(capsys, *simulate, *shop, *at)
    assert (code, capped[1]) == (
        0,
        f"usage: unreadable {unread}; the router connects without limits then",
    )
    assert capped[-1] == "outcome: answered (rule order-hotline)"
    clinic = ("--number", "4001234567", "--caller", "02012345678")
    code, uncapped = hotline400(capsys, *simulate, *clinic, *at)
    assert (code, uncapped[1]) == (
        0,
        f"store: unreadable {unread}; the inventory's status is left out",
    )


def test_simulate_shows_a_rejection_and_its_announcement(capsys: Capture, config_dir: Path) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(config_dir),
        "--number",
        "4001234567",
        "--caller",
        "053188889999",
        "--at",
        "2026-10-01 21:30",
    )
    assert code == 0
    assert lines[-3:] == [
        "  screening (allow): refused: caller 053188889999 (山东/济南/0531) "
        "is not in provinces ['广东']",
        "  decision: reject (blocked): caller region is screened",
        "outcome: blocked (blocked), playing renhe/outside-service-area",
    ]


def test_simulate_plays_no_menu_for_an_account_without_the_ivr_feature(
    capsys: Capture, config_dir: Path
) -> None:
    shop = ("--config", str(config_dir), "--number", "4008207788", "--caller", "13801650000")
    shop += ("--at", "2026-11-23 11:00", "--digits", "2")
    code, lines = hotline400(capsys, "simulate", *shop)
    assert code == 0
    assert "  menu 'main' key 2: matched -> dial 02155556670" in lines
    assert "menus: main:2 (keys pressed: 2)" in lines

    tariffs = config_dir / "tariffs.yaml"
    paid = tariffs.read_text(encoding="utf-8")
    tariffs.write_text(paid.replace("      ivr: 2025-06-01\n", ""), encoding="utf-8")
    code, lines = hotline400(capsys, "simulate", *shop)
    assert code == 0
    assert "  menu 'main': not played (the account has no ivr feature) -> default" in lines
    assert not any(line.startswith("menus:") for line in lines)


def test_simulate_many_calls_shows_the_split_percentages(capsys: Capture) -> None:
    code, lines = hotline400(
        capsys,
        "simulate",
        "--config",
        str(SHIPPED_CONFIG),
        "--number",
        "4008207788",
        "--caller",
        "13812345678",
        "--at",
        "2026-11-23 10:00",
        "--calls",
        "100",
    )
    assert code == 0
    assert lines[1].startswith("usage (postpaid): 2026-11 cost")
    assert " of 100000 incoming call(s), " in lines[1]  # the monthly cap counts every call
    assert [line.split() for line in lines[2:]] == [
        ["02155556666", "60", "calls", "60.00%"],
        ["02866667777", "30", "calls", "30.00%"],
        ["02788889999", "10", "calls", "10.00%"],
    ]


def test_simulate_shows_the_progress_of_a_long_run_on_a_terminal(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("router.commands.simulate.PROGRESS_FROM", 100)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["--number", "4008207788", "--caller", "13812345678", "--at", "2026-11-23 10:00"]
    assert main(["simulate", "--config", str(SHIPPED_CONFIG), *argv, "--calls", "200"]) == 0
    assert terminal.getvalue().endswith("\r198 of 200 calls\r200 of 200 calls\n")
    assert "02155556666" in capsys.readouterr().out


def test_simulate_says_why_a_number_has_no_valid_plan(capsys: Capture, config_dir: Path) -> None:
    _, expected = break_lanhua_plan(config_dir)
    argv = ["--config", str(config_dir), "--number", "4008207788", "--caller", "13812345678"]
    assert main(["simulate", *argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"no valid plan for 4008207788: {expected[0]} "
        f"(and {len(expected) - 1} more: hotline400 check)\n"
    )


def test_a_third_busy_number_in_a_rule_fails_check_and_is_never_dialled(
    capsys: Capture, config_dir: Path
) -> None:
    plan = config_dir / "plans" / "4008207788.yaml"
    line = (
        break_file(
            plan,
            '    target: "02155550001"\n',
            '    target: "02155550001"\n    forwarding: {on_busy: ["13801659999"]}\n',
        )
        + 1
    )
    problem = (
        f"{plan}:{line} rules[0].forwarding.on_busy: 3 different busy forwarding numbers across "
        "the plan (02155556667, 02866667778, 13801659999), at most 2 per subscriber (2 for busy "
        "and 2 for no-answer, rule overrides included)"
    )
    code, lines = hotline400(capsys, "check", "--config", str(config_dir), "--today", "2026-06-01")
    assert (code, lines[0]) == (1, problem)
    vip = ("--number", "4008207788", "--caller", "13801651234", "--busy", "02155550001")
    assert main(["simulate", "--config", str(config_dir), *vip]) == 1
    assert capsys.readouterr() == ("", f"no valid plan for 4008207788: {problem}\n")


def test_simulate_names_a_missing_config_directory(capsys: Capture, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert main(["simulate", "--config", str(missing), *ISSUE_EXAMPLE]) == 1
    assert capsys.readouterr() == ("", f"no configuration directory {missing}\n")


def test_simulate_refuses_a_time_it_cannot_read(capsys: Capture, config_dir: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--config", str(config_dir), *ISSUE_EXAMPLE[:4], "--at", "9:30pm"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "hotline400 simulate: argument --at: '9:30pm' is not a time: use \"YYYY-MM-DD\", "
        '"YYYY-MM-DD HH:MM" or ISO 8601 with offset (see hotline400 simulate --help)\n'
    )


# --- pin-hash ------------------------------------------------------------------------------


def test_pin_hash_prints_a_salted_hash_the_pin_verifies_against(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    code, lines = hotline400(capsys, "pin-hash", "--stdin")
    assert code == 0
    [stored] = lines
    assert "2468" not in stored.split("$")  # (random hex may hold those digits: 1 in 700)
    assert verify_pin("2468", stored)
    assert not verify_pin("2469", stored)


def test_a_long_pin_hashed_by_pin_hash_is_read_whole_or_its_plan_refused(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch, config_dir: Path
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("12345678\n"))
    code, [stored] = hotline400(capsys, "pin-hash", "--stdin")
    assert code == 0
    plan_file = config_dir / "plans" / "4001234567.yaml"
    shown = plan_file.read_text(encoding="utf-8")
    old_hash = shown.split('hash: "')[1].split('"')[0]
    plan_file.write_text(shown.replace(old_hash, stored), encoding="utf-8")
    line = line_of(plan_file, "max_digits: 6")  # the shipped plan reads 6 digits
    code, lines = hotline400(capsys, "check", str(plan_file))
    assert (code, lines) == (
        1,
        [
            f"{plan_file}:{line} pin.max_digits: 6 is shorter than the PIN, which has 8 digits "
            "(pin.hash): the entry would stop before its last digit and no caller could ever "
            "get through; set max_digits to 8 or more, or leave it out",
            "checked 1 file(s): 1 problem(s)",
        ],
    )
    plan_file.write_text(
        plan_file.read_text(encoding="utf-8").replace("  max_digits: 6\n", ""), encoding="utf-8"
    )
    code, lines = hotline400(capsys, "check", str(plan_file))
    assert (code, lines) == (0, ["checked 1 file(s): ok"])
    plan = load_plan(plan_file)
    assert plan.pin is not None and plan.pin.max_digits == 8


def test_pin_hash_offers_no_configuration_it_does_not_read(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash depends on the PIN alone: its help names no --config, which a script
    passing one to every command may still give."""
    with pytest.raises(SystemExit):
        main(["pin-hash", "--help"])
    assert "--config" not in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    code, [stored] = hotline400(capsys, "pin-hash", "--config", "nowhere", "--stdin")
    assert code == 0 and verify_pin("2468", stored)


def test_pin_hash_refuses_what_is_not_a_4_to_12_digit_pin(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("24a8\n"))
    assert main(["pin-hash", "--stdin"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "pin-hash: a PIN is 4 to 12 digits; nothing hashed\n"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(*entries: str | type[BaseException]) -> Callable[[str], str]:
    """getpass as a person at the terminal answers it, entry after entry."""
    queue = list(entries)

    def getpass(prompt: str) -> str:
        entry = queue.pop(0)
        if isinstance(entry, str):
            return entry
        raise entry

    return getpass


def test_pin_hash_asks_twice_on_a_terminal(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", typed("2468", "2468"))
    assert main(["pin-hash"]) == 0
    assert verify_pin("2468", capsys.readouterr().out.strip())

    monkeypatch.setattr("getpass.getpass", typed("2468", "2469"))
    assert main(["pin-hash"]) == 1
    assert capsys.readouterr() == ("", "pin-hash: the two entries differ; nothing hashed\n")


@pytest.mark.parametrize(
    ("entries", "code", "err"),
    [
        ((EOFError,), 1, "\npin-hash: no PIN entered; nothing hashed\n"),
        (("2468", EOFError), 1, "\npin-hash: no PIN entered; nothing hashed\n"),
        ((KeyboardInterrupt,), 130, "interrupted\n"),
    ],
)
def test_pin_hash_ends_in_one_line_on_ctrl_d_and_ctrl_c(
    capsys: Capture,
    monkeypatch: pytest.MonkeyPatch,
    entries: tuple[str | type[BaseException], ...],
    code: int,
    err: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", typed(*entries))
    assert main(["pin-hash"]) == code
    assert capsys.readouterr() == ("", err)


def test_pin_hash_without_a_terminal_points_at_stdin(
    capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("2468\n"))
    assert main(["pin-hash"]) == 1
    assert capsys.readouterr().err == (
        "pin-hash: no terminal to ask the PIN on (pipe it in with --stdin); nothing hashed\n"
    )


# --- the installed command -----------------------------------------------------------------


def test_the_installed_console_script_runs_check(config_dir: Path) -> None:
    script = Path(sys.executable).with_name("hotline400")
    finished = subprocess.run(
        [str(script), "check", "--config", str(config_dir), "--today", "2026-06-01"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout == f"checked {checked_files(config_dir)} file(s): ok\n"


def run_with_reader_gone(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run the installed command with its output piped to a reader that has gone away, as
    `hotline400 cdr | head` leaves it once head has its lines."""
    script = Path(sys.executable).with_name("hotline400")
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(
            [str(script), *argv],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "argv",
    [
        ("check", "--today", "2026-06-01"),
        ("simulate", "--number", "4008207788", "--caller", "13801650000", "--calls", "20"),
    ],
)
def test_a_command_whose_reader_goes_away_stops_quietly(
    config_dir: Path, argv: tuple[str, ...]
) -> None:
    finished = run_with_reader_gone(argv[0], "--config", str(config_dir), *argv[1:])
    assert finished.stderr == ""
    assert finished.returncode == 141  # 128 + SIGPIPE, as the shell reports a reader gone


def test_simulate_refuses_a_call_routed_by_a_past_holders_plan(
    capsys: Capture, config_dir: Path, tmp_path: Path
) -> None:
    """A plan naming a subscriber that no longer holds its number routes none of its calls
    in the router: simulate shows the same refusal, read from the same inventory."""
    settings = config_dir / "router.yaml"
    store = tmp_path / "var" / "hotline400.db"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("database: var/hotline400.db", f"database: {store}"))
    plan = config_dir / "plans" / "4001234567.yaml"
    text = plan.read_text(encoding="utf-8")
    named = 'number: "4001234567"\nsubscriber: renhe\n'
    plan.write_text(text.replace('number: "4001234567"\n', named), encoding="utf-8")
    config = ("--config", str(config_dir))
    assert hotline400(capsys, "db", "upgrade", *config)[0] == 0

    async def held_by_another() -> None:
        async with opened_store(f"sqlite:///{store}") as opened:
            await opened.add_numbers([NumberRecord("4001234567")], at("2026-11-01 10:00"))
            inventory = Inventory(opened, NumberRules(), OfficialCalendar(), UNWATCHED)
            calendar = OfficialCalendar()
            rules = NumberRules()
            applied = at("2026-11-02 10:00")
            for action in (
                lambda r, t: lifecycle.reserve(r, "sp-east", t, rules),
                lambda r, t: lifecycle.apply(r, "kangle", "sp-east", t, rules),
                lambda r, t: lifecycle.submit(r, t, rules, calendar),
            ):
                await inventory.act("4001234567", applied, action)
            approve = lambda r, t: lifecycle.approve(r, "ops", t, rules, calendar)  # noqa: E731
            await inventory.act("4001234567", at("2026-11-04 10:00"), approve)

    asyncio.run(held_by_another())
    simulated = ("--number", "4001234567", "--caller", "02012345678", "--at", "2026-11-23 10:00")
    code, lines = hotline400(capsys, "simulate", *config, *simulated)

    assert code == 0
    assert lines[-1] == (
        "outcome: unknown_number, 4001234567 is held by kangle, not by renhe, the subscriber its "
        "plan names: a past holder's plan routes none of its calls"
    )
    assert not any(". dial " in line for line in lines)


def test_simulate_refuses_a_call_to_a_number_the_inventory_has_not_put_in_service(
    capsys: Capture, config_dir: Path, tmp_path: Path
) -> None:
    """The router refuses a call to a number its inventory holds in the pool (or reserved,
    applied for, under review) whatever its plan says: simulate reads the same inventory,
    also for a postpaid number without caps, and shows that refusal, not a connected call."""
    settings = config_dir / "router.yaml"
    store = tmp_path / "var" / "hotline400.db"
    text = settings.read_text(encoding="utf-8")
    settings.write_text(text.replace("database: var/hotline400.db", f"database: {store}"))
    pool = tmp_path / "pool.txt"
    pool.write_text("4001234567\n", encoding="utf-8")
    config = ("--config", str(config_dir))
    assert hotline400(capsys, "db", "upgrade", *config)[0] == 0
    imported = ("numbers", "import", str(pool), *config, "--at", "2026-11-01 10:00")
    assert hotline400(capsys, *imported)[0] == 0

    code, lines = hotline400(
        capsys,
        "simulate",
        *config,
        "--number",
        "4001234567",
        "--caller",
        "02012345678",
        "--at",
        "2026-11-23 10:00",
    )
    assert code == 0
    assert lines[-1] == (
        "outcome: unknown_number, 4001234567 is available in the inventory, not in service"
    )
    assert not any(". dial " in line for line in lines)
