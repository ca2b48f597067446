"""Every configuration file beside the plans, broken as people break them, is refused in the
plans' words: its file, line and field, what is wrong and what is accepted instead.

Each case breaks one line of a copy of the shipped configuration, then runs `hotline400
check --config DIR` as an admin does; `hotline400 serve` is run as a process, as a service
manager runs it: refused at once, in the same words, for router.yaml, and for the others when
it has no last good copy of them to serve instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from router.configuration.settings import RouterSettings
from tests.conftest import REPO, free_port, logged_since, until_logged

Capture = pytest.CaptureFixture[str]

TODAY = ("--today", "2026-06-01")  # far from the calendar's end: no warning
PROCESS_LIMIT_S = 60.0
SERVE = (sys.executable, "-m", "router.cli", "serve")
ROUTER_KEYS = len(RouterSettings.model_json_schema()["properties"])
TAB = (
    "(file): invalid YAML at column 1: a tab character; indent with spaces (YAML does not "
    "accept tabs)"
)


def not_utf8(column: int, byte: str) -> str:
    return (
        f"(file): not UTF-8 text: byte 0x{byte} at column {column} cannot be read; save the "
        "file as UTF-8 (an editor's GBK or GB18030 is not read)"
    )


FAULTS = [
    # (file, what is written, what instead, lines below it the problem is told at, problem;
    # {line} is the line written on)
    # --- calendar.yaml
    ("calendar.yaml", "covers: []", "covers:\n\t- 2027", 1, TAB),
    (
        "calendar.yaml",
        "covers: []",
        "covers: [2027",
        1,
        "(file): invalid YAML at column 9: expected ',' or ']', but got ':' (the [ at line "
        "{line} is not closed)",
    ),
    (
        "calendar.yaml",
        "holidays: {}",
        "holidays:\n  2027-01-01: \"New Year's Day",
        3,  # the quote runs on to the end of the file
        '(file): invalid YAML at column 1: found unexpected end of stream (the " opened at '
        "line {next} is not closed)",
    ),
    ("calendar.yaml", "holidays: {}", "holidays:\n  2027-10-01: 国庆节", 1, not_utf8(15, "b9")),
    (
        "calendar.yaml",
        "covers: []",
        "covers: [2027]\x07",
        0,
        "(file): invalid YAML at column 15: the character U+0007 is not allowed in YAML: remove it",
    ),
    ("calendar.yaml", "covers: []", "cover: []", 0, "cover: unknown key (did you mean covers?)"),
    (
        "calendar.yaml",
        "covers: []",
        "covers: 2027",
        0,
        "covers: expected a list of years (found 2027: write [2027])",
    ),
    (
        "calendar.yaml",
        "covers: []",
        "covers: [27]",
        0,
        "covers[0]: not a year like 2027 (found 27)",
    ),
    # --- tariffs.yaml
    ("tariffs.yaml", "  ivr: 200.00", "\tivr: 200.00", 0, TAB),
    (
        "tariffs.yaml",
        "mobile: {per_seconds: 60, charge: 0.15}",
        "mobile: {per_seconds: 60, charge: 0.15",
        2,
        "(file): invalid YAML at column 3: expected ',' or '}', but got '?' (the { at line "
        "{line} is not closed)",
    ),
    ("tariffs.yaml", "  ivr: 200.00", "  ivr: 200.00  # 开通费", 0, not_utf8(18, "bf")),
    (
        "tariffs.yaml",
        "monthly_rent: 100.00",
        "monthly_rnet: 100.00",
        0,
        "packages.regional-100.monthly_rnet: unknown key (did you mean monthly_rent?)",
    ),
    (
        "tariffs.yaml",
        "mobile: {per_seconds: 60, charge: 0.15}",
        "mobile: {per_second: 60, charge: 0.15}",
        0,
        "caller_tariffs.mobile.per_second: unknown key (did you mean per_seconds?)",
    ),
    (
        "tariffs.yaml",
        "mobile: {per_seconds: 60, charge: 0.15}",
        "mobile: {per_seconds: 60, charge: 0.15, colour: blue}",
        0,
        "caller_tariffs.mobile.colour: unknown key (expected first_seconds, first_charge, "
        "per_seconds, charge)",
    ),
    (
        "tariffs.yaml",
        "included_minutes: 200",
        "included_minutes: 200.5",
        0,
        "packages.regional-100.included_minutes: must be a whole number (found 200.5)",
    ),
    (
        "tariffs.yaml",
        'time: ["22:00-07:00"]',
        'time: "22:00-07:00"',
        0,
        "packages.regional-100.periods[0].time: must be a list (found '22:00-07:00': "
        'write ["22:00-07:00"])',
    ),
    (
        "tariffs.yaml",
        'version: "2026-11"',
        "version: 2026-11-01",
        0,
        'version: must be text (found 2026-11-01, read as a date: write "2026-11-01")',
    ),
    (
        "tariffs.yaml",
        "  recording: 100.00",
        "  recording: [100.00]",
        0,
        "features.recording: must be an amount in yuan such as '300.00' (found [100.0])",
    ),
    # --- router.yaml
    ("router.yaml", "  window: 3600", "\twindow: 3600", 0, TAB),
    (
        "router.yaml",
        'allowed_peers: [127.0.0.1/32, "::1/128"]',
        'allowed_peers: [127.0.0.1/32, "::1/128"',
        2,  # the next value, below a comment
        "(file): invalid YAML at column 1: expected ',' or ']', but got '<scalar>' (the [ at line "
        "{line} is not closed)",
    ),
    ("router.yaml", "log_level: INFO", "log_level: INFO  # 日志", 0, not_utf8(20, "c8")),
    (
        "router.yaml",
        "drain_timeout: 30",
        "drain_timout: 30",
        0,
        "drain_timout: unknown key (did you mean drain_timeout?)",
    ),
    (
        "router.yaml",
        "log_level: INFO",
        "verbosity: INFO",
        0,
        f"verbosity: unknown key (expected one of {ROUTER_KEYS} keys: listen, allowed_peers, "
        "dial_template, header_timeout, header_max_bytes, ...)",
    ),
    (
        "router.yaml",
        "header_max_bytes: 65536",
        "header_max_bytes: 64k",
        0,
        "header_max_bytes: must be a whole number (found '64k')",
    ),
    (
        "router.yaml",
        "drain_timeout: 30",
        "drain_timeout: soon",
        0,
        "drain_timeout: must be a number (found 'soon')",
    ),
    (
        "router.yaml",
        "watch_plans: true",
        "watch_plans: yes please",
        0,
        "watch_plans: must be true or false (found 'yes please')",
    ),
    (
        "router.yaml",
        'allowed_peers: [127.0.0.1/32, "::1/128"]',
        "allowed_peers: 10.0.0.0/8",
        0,
        "allowed_peers: must be a list (found '10.0.0.0/8': write [\"10.0.0.0/8\"])",
    ),
    (
        "router.yaml",
        "log_level: INFO",
        "log_level: INFO\nlog_level: DEBUG",
        1,
        "log_level: key given twice (first at line {line}); only one may stand",
    ),
    # --- numbers.yaml
    ("numbers.yaml", "  opening: 600.00", "\topening: 600.00", 0, TAB),
    (
        "numbers.yaml",
        'tails: ["8888"]}',
        'tails: ["8888"}',
        0,
        "(file): invalid YAML at column 69: expected ',' or ']', but got '}' (the [ at line "
        "{line} is not closed)",
    ),
    ("numbers.yaml", "  opening: 600.00", "  opening: 600.00 # 开户", 0, not_utf8(21, "bf")),
    (
        "numbers.yaml",
        "  reservation_days: 3",
        "  reservaton_days: 3",
        0,
        "timing.reservaton_days: unknown key (did you mean reservation_days?)",
    ),
    (
        "numbers.yaml",
        "{name: platinum, fee: 8000.00",
        "{nmae: platinum, fee: 8000.00",
        0,
        "grades[0].nmae: unknown key (did you mean name?)",
    ),
    (
        "numbers.yaml",
        "  reservation_days: 3",
        "  hold_days: 3",
        0,
        "timing.hold_days: unknown key (expected reservation_days, long_reservation_days, "
        "long_reservation_segments, release_freeze_minutes, review_min_working_days, "
        "review_max_working_days, suspension_limit_months, cancellation_notice_days, "
        "cancelled_freeze_days)",
    ),
    (
        "numbers.yaml",
        "  reservation_days: 3",
        "  reservation_days: 3.5",
        0,
        "timing.reservation_days: must be a whole number (found 3.5)",
    ),
    (
        "numbers.yaml",
        'long_reservation_segments: ["4008"]',
        'long_reservation_segments: "4008"',
        0,
        "timing.long_reservation_segments: must be a list (found '4008': write [\"4008\"])",
    ),
]
FAULT_IDS = [
    "calendar: a tab",
    "calendar: an unclosed bracket",
    "calendar: an unclosed quote",
    "calendar: GBK",
    "calendar: a control character",
    "calendar: a misspelt key",
    "calendar: a year where a list is due",
    "calendar: a year cut short",
    "tariffs: a tab",
    "tariffs: an unclosed brace",
    "tariffs: GBK",
    "tariffs: a misspelt key",
    "tariffs: a misspelt key of a rate",
    "tariffs: a key close to none",
    "tariffs: a fraction of a minute",
    "tariffs: a window where a list is due",
    "tariffs: a date where text is due",
    "tariffs: a list where an amount is due",
    "router: a tab",
    "router: an unclosed bracket",
    "router: GBK",
    "router: a misspelt key",
    "router: a key close to none",
    "router: a size in words",
    "router: a time in words",
    "router: a yes in words",
    "router: a network where a list is due",
    "router: a key given twice",
    "numbers: a tab",
    "numbers: an unclosed bracket",
    "numbers: GBK",
    "numbers: a misspelt key",
    "numbers: a misspelt key of a grade",
    "numbers: a key close to none",
    "numbers: a fraction of a day",
    "numbers: a segment where a list is due",
]


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A copy of the shipped configuration, free to break, its metrics on a port of its own."""
    config = Path(shutil.copytree(REPO / "config", tmp_path / "config"))
    router_yaml = config / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    metrics = f"metrics_listen: 127.0.0.1:{free_port()}"
    router_yaml.write_text(text.replace("metrics_listen: 127.0.0.1:9400", metrics), "utf-8")
    return config


def break_line(path: Path, old: str, new: str) -> int:
    """Write `new` for the first `old` of a file (in GBK, as a Chinese editor saves, when it
    holds Chinese: the shipped files are ASCII, the same in either); the line written on."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    encoding = "utf-8" if new.isascii() else "gbk"
    path.write_text(text.replace(old, new, 1), encoding=encoding)
    return text[: text.index(old)].count("\n") + 1


def broken(config_dir: Path, fault: tuple[str, str, str, int, str]) -> str:
    """Break the file as `fault` says; the problem line `check` must print for it."""
    name, old, new, below, problem = fault
    path = config_dir / name
    line = break_line(path, old, new)
    told = problem.replace("{line}", str(line)).replace("{next}", str(line + 1))
    return f"{path}:{line + below} {told}"


@pytest.mark.parametrize("fault", FAULTS, ids=FAULT_IDS)
def test_check_tells_the_file_line_field_and_what_is_accepted(
    capsys: Capture, config_dir: Path, fault: tuple[str, str, str, int, str]
) -> None:
    expected = broken(config_dir, fault)
    code = main(["check", "--config", str(config_dir), *TODAY])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines()[0] == expected
    assert captured.out.splitlines()[1].endswith(": 1 problem(s)")
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("name", ["calendar.yaml", "tariffs.yaml", "router.yaml", "numbers.yaml"])
def test_check_of_the_file_alone_says_the_same(
    capsys: Capture, config_dir: Path, name: str
) -> None:
    [fault] = [f for f, i in zip(FAULTS, FAULT_IDS, strict=True) if f[0] == name and "GBK" in i]
    expected = broken(config_dir, fault)
    assert main(["check", str(config_dir / name), *TODAY]) == 1
    assert capsys.readouterr().out.splitlines() == [expected, "checked 1 file(s): 1 problem(s)"]


def serve(config_dir: Path, *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*SERVE, "--config", str(config_dir), *argv],
        cwd=config_dir.parent,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    "fault",
    [f for f, i in zip(FAULTS, FAULT_IDS, strict=True) if i.startswith("router:")][:4],
    ids=[i for i in FAULT_IDS if i.startswith("router:")][:4],
)
def test_serve_refuses_a_broken_router_yaml_in_one_line_naming_it(
    config_dir: Path, fault: tuple[str, str, str, int, str]
) -> None:
    expected = broken(config_dir, fault)
    process = serve(config_dir, "--listen", f"127.0.0.1:{free_port()}")
    _, stderr = process.communicate(timeout=PROCESS_LIMIT_S)
    assert process.returncode == 1
    assert stderr.splitlines() == [f"cannot start: {expected}"]


FIRST_START_FAULTS = ("calendar: a misspelt key", "tariffs: GBK", "numbers: an unclosed bracket")


def check_lines(capsys: Capture, config_dir: Path, path: Path) -> list[str]:
    """The problems `hotline400 check --config DIR` prints for the file at `path`."""
    assert main(["check", "--config", str(config_dir), *TODAY]) == 1
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{path}:")]


def started(config_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """`serve` as a process listening on a port of its own choosing, logging to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [*SERVE, "--config", str(config_dir), "--listen", "127.0.0.1:0"],
            cwd=config_dir.parent,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=output,
            stderr=output,
        )


def stopped(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=PROCESS_LIMIT_S)


@pytest.mark.parametrize(
    "chosen",
    [[fault] for fault in FIRST_START_FAULTS] + [list(FIRST_START_FAULTS)],
    ids=[*FIRST_START_FAULTS, "all three"],
)
def test_a_first_start_with_a_broken_file_and_no_last_good_copy_is_refused(
    capsys: Capture, config_dir: Path, chosen: list[str]
) -> None:
    """Without its tariffs a router would connect calls with no prices, caps or balance
    checks; without numbers.yaml, suspended and cancelled numbers; without the calendar,
    holidays routed as working days. With no copy of the file that loaded before (a first
    start, a new host), the start is refused with the file's problems as `check` prints
    them, rather than routing on without it."""
    faults = [f for f, i in zip(FAULTS, FAULT_IDS, strict=True) if i in chosen]
    expected = [broken(config_dir, fault) for fault in faults]
    paths = [config_dir / fault[0] for fault in faults]
    checked = [line for path in paths for line in check_lines(capsys, config_dir, path)]
    process = serve(config_dir, "--listen", "127.0.0.1:0")
    try:
        _, stderr = process.communicate(timeout=PROCESS_LIMIT_S)
    finally:
        if process.poll() is None:  # it serves: not to be left running
            process.kill()
            process.wait()
    assert process.returncode == 1
    lines = stderr.splitlines()
    refusal = next(n for n, line in enumerate(lines) if line.startswith("cannot start: "))
    files = ", ".join(str(path) for path in paths[:-1]) + " and " * (len(paths) > 1)
    files += str(paths[-1])
    verb = "has" if len(paths) == 1 else "have"
    last_good = config_dir.parent / "var" / "spool" / "last-good"
    assert lines[refusal] == (
        f"cannot start: {files} {verb} problems and no last good copy in {last_good} to serve "
        f"instead; fix {'it' if len(paths) == 1 else 'them'} and start again:"
    )
    assert lines[refusal + 1 :] == checked == expected
    assert "FastAGI listening" not in stderr
    assert "Traceback" not in stderr
    assert not any((last_good / path.name).exists() for path in paths)


async def test_a_restart_after_a_bad_edit_serves_the_last_good_copy_of_each_file(
    config_dir: Path,
) -> None:
    """A copy of each file that loaded is what a start serves instead of a broken file: the
    refusal is for a start with nothing good to serve."""
    log = config_dir.parent / "serve.log"
    first = started(config_dir, log)
    await until_logged(first, log, "FastAGI listening on 127.0.0.1:")
    assert stopped(first) == 0
    for fault in [f for f, i in zip(FAULTS, FAULT_IDS, strict=True) if i in FIRST_START_FAULTS]:
        broken(config_dir, fault)
    since = log.stat().st_size
    again = started(config_dir, log)
    try:
        await until_logged(again, log, "FastAGI listening on 127.0.0.1:", since=since)
    finally:
        assert stopped(again) == 0
    told = logged_since(log, since)
    for name in ("calendar.yaml", "tariffs.yaml", "numbers.yaml"):
        assert f"{config_dir / name} has problems: its last good version from " in told


async def test_a_first_start_with_a_broken_plan_serves_the_other_numbers(
    config_dir: Path,
) -> None:
    """A plan with problems and no copy leaves its one number unserved (a call to it is
    refused as unknown, costing nothing), not the router."""
    plan = config_dir / "plans" / "4008207788.yaml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("number:", "numbr:", 1), "utf-8")
    log = config_dir.parent / "serve.log"
    process = started(config_dir, log)
    try:
        await until_logged(process, log, "FastAGI listening on 127.0.0.1:")
    finally:
        assert stopped(process) == 0
    assert f"configuration problem: {plan}:" in logged_since(log)


async def test_a_first_start_without_the_optional_files_routes(config_dir: Path) -> None:
    """A calendar, tariffs or numbers.yaml that is not there is a router run without it on
    purpose (postpaid calls, no holidays), not a file that failed to load."""
    for name in ("calendar.yaml", "tariffs.yaml", "numbers.yaml"):
        (config_dir / name).unlink()
    log = config_dir.parent / "serve.log"
    process = started(config_dir, log)
    try:
        await until_logged(process, log, "FastAGI listening on 127.0.0.1:")
    finally:
        assert stopped(process) == 0


async def test_a_file_broken_while_serving_keeps_its_version_serving(config_dir: Path) -> None:
    """A reload is no start: the version loaded keeps serving and the router runs on."""
    log = config_dir.parent / "serve.log"
    process = started(config_dir, log)
    try:
        await until_logged(process, log, "FastAGI listening on 127.0.0.1:")
        [fault] = [f for f, i in zip(FAULTS, FAULT_IDS, strict=True) if i == "tariffs: GBK"]
        expected = broken(config_dir, fault)
        process.send_signal(signal.SIGHUP)
        await until_logged(process, log, "configuration problem: ")
        assert process.poll() is None
    finally:
        assert stopped(process) == 0
    assert expected in logged_since(log).replace('\\"', '"')
