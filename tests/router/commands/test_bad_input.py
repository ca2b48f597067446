"""Every command fed the mistakes people make: each ends with one line on stderr and a
non-zero exit, no traceback, nothing printed as if it had worked, and nothing written.

The commands run in a directory holding a copy of the example configuration and, for the
commands that read records, the database a router made; the whole directory is compared
file by file before and after each command.
"""

from __future__ import annotations

import argparse
import io
import shutil
import socket
import sys
from pathlib import Path

import pytest

from router.cli import build_parser, main
from tests.conftest import REPO

SHIPPED_CONFIG = REPO / "config"
CALL = ("--number", "4006001234", "--caller", "053188889999")
MISSING = "/nonexistent/hotline400"
CALLGEN = ("callgen", "--target", "127.0.0.1:1", "--calls", "1", "--concurrency", "1")

BAD_INPUTS: list[tuple[str, list[str], str]] = [
    # (what a person did, the command line, what the one line must say)
    ("no command", [], "the following arguments are required: COMMAND"),
    ("an unknown command", ["route"], "invalid choice: 'route'"),
    ("an unknown option", ["check", "--verbose"], "unrecognized arguments: --verbose"),
    # simulate
    (
        "a busy number that is no number",
        ["simulate", *CALL, "--busy", "notanumber"],
        "argument --busy: 'notanumber' is not a phone number",
    ),
    (
        "a no-answer number that is no number",
        ["simulate", *CALL, "--no-answer", "x"],
        "argument --no-answer: 'x' is not a phone number",
    ),
    (
        "a day February does not have",
        ["simulate", *CALL, "--at", "2026-02-30 10:00"],
        "argument --at: '2026-02-30' is not a date: February 2026 has 28 days",
    ),
    (
        "a time of day that does not exist",
        ["simulate", *CALL, "--at", "2026-11-23 25:00"],
        "argument --at: '2026-11-23 25:00' is not a time",
    ),
    (
        "a hundred million calls",
        ["simulate", *CALL, "--calls", "100000000"],
        "argument --calls: '100000000' is not a whole number from 1 to 1,000,000",
    ),
    (
        "no calls",
        ["simulate", *CALL, "--calls", "0"],
        "argument --calls: '0' is not a whole number from 1 to 1,000,000",
    ),
    (
        "menu keys no keypad has",
        ["simulate", *CALL, "--digits", "12a"],
        "--digits: '12a' is not up to 20 keys of a telephone keypad",
    ),
    (
        "a 400 number with letters",
        ["simulate", "--number", "400abc1234", "--caller", "1"],
        "argument --number: '400abc1234' is not a 400 number like 4006001234",
    ),
    (
        "a number without a plan",
        ["simulate", "--number", "4009999999", "--caller", "1"],
        "no valid plan for 4009999999",
    ),
    (
        "a missing configuration",
        ["simulate", "--config", MISSING, *CALL],
        f"no configuration directory {MISSING}",
    ),
    # check
    (
        "check of a missing directory",
        ["check", MISSING],
        f"nothing checked: no such file or directory: {MISSING}",
    ),
    (
        "check as of an impossible day",
        ["check", "--today", "2026-02-30"],
        "argument --today: '2026-02-30' is not a date: February 2026 has 28 days",
    ),
    # calendar
    (
        "the calendar of a missing configuration",
        ["calendar", "--config", MISSING],
        f"no configuration directory {MISSING}",
    ),
    (
        "the calendar of year 0",
        ["calendar", "--year", "0"],
        "argument --year: '0': the year 0 is out of range",
    ),
    (
        "the calendar of a year past the last date there is",
        ["calendar", "--year", "99999"],
        "argument --year: '99999': the year 99999 is out of range",
    ),
    (
        "the calendar of a year of letters",
        ["calendar", "--year", "next"],
        "argument --year: 'next' is not a year like 2027",
    ),
    # serve, demo, db
    (
        "serve without its configuration",
        ["serve", "--config", MISSING],
        f"cannot start: no configuration directory {MISSING}",
    ),
    (
        "serve on an address that is none",
        ["serve", "--listen", "4573"],
        "argument --listen: 4573 is not HOST:PORT",
    ),
    (
        "the demo on a missing configuration",
        ["demo", "--config", MISSING],
        f"demo: no configuration directory {MISSING}",
    ),
    (
        "db upgrade without its configuration",
        ["db", "upgrade", "--config", MISSING],
        f"cannot upgrade: no configuration directory {MISSING}",
    ),
    (
        "db upgrade on a store URL of no kind",
        ["db", "upgrade", "--store", "mysql://db/x"],
        "cannot upgrade: mysql://db/x: a store is sqlite:///PATH or postgresql://USER@HOST/DATABASE",
    ),
    # callgen
    (
        "callgen at a target without a port",
        ["callgen", "--target", "localhost", "--calls", "1", "--concurrency", "1"],
        "argument --target: localhost is not HOST:PORT",
    ),
    (
        "callgen with no calls",
        ["callgen", "--target", "127.0.0.1:1", "--calls", "0", "--concurrency", "1"],
        "argument --calls: '0' is not a whole number from 1",
    ),
    (
        "callgen to a number that is no 400 number",
        [
            "callgen",
            "--target",
            "127.0.0.1:1",
            "--calls",
            "1",
            "--concurrency",
            "1",
            "--number",
            "12345",
        ],
        "argument --number: '12345' is not a 400 number",
    ),
    (
        "callgen with a mix over 100",
        [
            "callgen",
            "--target",
            "127.0.0.1:1",
            "--calls",
            "1",
            "--concurrency",
            "1",
            "--mix",
            "answer=90,busy=20",
        ],
        "argument --mix:",
    ),
    (
        "callgen with a PIN that is not digits",
        [
            "callgen",
            "--target",
            "127.0.0.1:1",
            "--calls",
            "1",
            "--concurrency",
            "1",
            "--pin",
            "4001234567=24a8",
        ],
        "argument --pin: '24a8': a PIN is 4 to 12 digits",
    ),
    (
        "callgen with the PIN of a number it does not call",
        [
            "callgen",
            "--target",
            "127.0.0.1:1",
            "--calls",
            "1",
            "--concurrency",
            "1",
            "--number",
            "4006001234",
            "--pin",
            "4001234567=2468",
        ],
        "--pin names 4001234567, which is not called",
    ),
    (
        "callgen with callers from a file that is not there",
        [*CALLGEN, "--callers", MISSING],
        f"callgen: cannot read {MISSING}: No such file or directory",
    ),
    (
        "callgen with callers from a directory",
        [*CALLGEN, "--callers", "config"],
        "callgen: cannot read config: Is a directory",
    ),
    (
        "callgen without its configuration",
        [*CALLGEN, "--config", MISSING],
        f"callgen: no configuration directory {MISSING}: name the numbers to call with --number",
    ),
    # webhooks
    (
        "webhooks list without its configuration",
        ["webhooks", "list", "--config", MISSING],
        f"webhooks: no configuration directory {MISSING}",
    ),
    (
        "webhooks replay without its configuration",
        ["webhooks", "replay", "--config", MISSING],
        f"webhooks: no configuration directory {MISSING}",
    ),
    (
        "webhooks replay of a number that is no 400 number",
        ["webhooks", "replay", "--number", "12345"],
        "argument --number: '12345' is not a 400 number",
    ),
    # sms, low-balance
    (
        "an sms replay without a gateway to send through",
        ["sms", "replay"],
        "sms: router.yaml names no sms_gateway to send through",
    ),
    (
        "a low-balance replay without a webhook to send to",
        ["low-balance", "replay"],
        "low-balance: router.yaml names no low_balance_webhook to send to",
    ),
    # account, bill, rate, cdr
    (
        "a top-up in exponent notation",
        ["account", "topup", "--number", "4006001234", "--amount", "1e9"],
        "argument --amount: '1e9' is not an amount like 600.00",
    ),
    (
        "a top-up of twenty digits",
        ["account", "topup", "--number", "4006001234", "--amount", "99999999999999999999"],
        "is not an amount like 600.00",
    ),
    (
        "a top-up of two million",
        ["account", "topup", "--number", "4006001234", "--amount", "2000000"],
        "argument --amount: '2000000': more than 1,000,000.00 yuan at once",
    ),
    (
        "a top-up of nothing",
        ["account", "topup", "--number", "4006001234", "--amount", "0"],
        "argument --amount: '0': the amount must be more than 0",
    ),
    (
        "a top-up to a number with letters",
        ["account", "topup", "--number", "abc", "--amount", "10"],
        "argument --number: 'abc' is not a 400 number",
    ),
    (
        "a top-up at a time of no form",
        ["account", "topup", "--number", "4006001234", "--amount", "10", "--at", "noon"],
        "argument --at: 'noon' is not a time",
    ),
    (
        "a top-up before any router made the books",
        ["account", "topup", "--number", "4006001234", "--amount", "10"],
        "create it with hotline400 db upgrade",
    ),
    (
        "a top-up to a number without an account",
        ["account", "topup", "--number", "4009999999", "--amount", "10"],
        "4009999999 has no account in tariffs.yaml",
    ),
    (
        "account show as of an impossible day",
        ["account", "show", "--number", "4006001234", "--today", "2026-02-30"],
        "February 2026 has 28 days",
    ),
    (
        "terms from an impossible day",
        ["account", "terms", "--record", "--day", "2026-02-29"],
        "argument --day: '2026-02-29' is not a date: February 2026 has 28 days",
    ),
    (
        "terms of a number without an account",
        ["account", "terms", "--number", "4009999999"],
        "4009999999 has no account in tariffs.yaml",
    ),
    (
        "fees of an impossible day",
        ["account", "fees", "--day", "2026-04-31"],
        "argument --day: '2026-04-31' is not a date: April 2026 has 30 days",
    ),
    (
        "a bill for month 13",
        ["bill", "--month", "2026-13"],
        "argument --month: '2026-13': there is no month 13",
    ),
    (
        "a bill for a month of one digit",
        ["bill", "--month", "2026-1"],
        "argument --month: '2026-1' is not a month like 2026-11",
    ),
    (
        "a bill for the last month of 9999",
        ["bill", "--month", "9999-12"],
        "argument --month: '9999-12': the year 9999 is out of range",
    ),
    (
        "account show as of the last day of 9999",
        ["account", "show", "--number", "4006001234", "--today", "9999-12-31"],
        "argument --today: '9999-12-31': the year 9999 is out of range",
    ),
    (
        "rating to the last day of 9999",
        ["rate", "--from", "9999-12-30", "--to", "9999-12-31"],
        "argument --from: '9999-12-30': the year 9999 is out of range",
    ),
    (
        "a bill for a number with letters",
        ["bill", "--month", "2026-11", "--number", "x"],
        "argument --number: 'x' is not a 400 number",
    ),
    (
        "rating from an impossible day",
        ["rate", "--from", "2026-02-30", "--to", "2026-03-01"],
        "argument --from: '2026-02-30' is not a date: February 2026 has 28 days",
    ),
    (
        "rating backwards",
        ["rate", "--from", "2026-03-02", "--to", "2026-03-01"],
        "--to 2026-03-01 is before --from 2026-03-02",
    ),
    (
        "records of a number with letters",
        ["cdr", "--number", "abc"],
        "argument --number: 'abc' is not a 400 number",
    ),
    (
        "records since an impossible day",
        ["cdr", "--since", "2026-02-30"],
        "argument --since: '2026-02-30' is not a date: February 2026 has 28 days",
    ),
    (
        "records until a time of no form",
        ["cdr", "--until", "last week"],
        "argument --until: 'last week' is not a time",
    ),
    ("no records at all", ["cdr", "--limit", "0"], "argument --limit: '0' is not a whole number"),
    (
        "records until before since",
        ["cdr", "--since", "2026-12-07", "--until", "2026-12-01"],
        "--until 2026-12-01 is before --since 2026-12-07",
    ),
    (
        "records until the day before since",
        ["cdr", "--since", "2026-12-07", "--until", "2026-12-06"],
        "--until 2026-12-06 is before --since 2026-12-07",
    ),
    ("records before any router ran", ["cdr"], "does not exist"),
    # pin-hash
    (
        "pin-hash with nothing piped in",
        ["pin-hash", "--stdin"],
        "pin-hash: no PIN on standard input; nothing hashed",
    ),
    (
        "pin-hash with no terminal",
        ["pin-hash"],
        "pin-hash: no terminal to ask the PIN on (pipe it in with --stdin); nothing hashed",
    ),
    ("a PIN of letters", ["pin-hash", "--stdin"], "pin-hash: a PIN is 4 to 12 digits"),
    # the management console
    (
        "a console password too short",
        ["users", "add", "ops1", "--role", "operator", "--password-stdin"],
        "users: a password needs at least 10 characters",
    ),
    (
        "a subscriber user without its account",
        ["users", "add", "staff1", "--role", "subscriber-staff", "--password-stdin"],
        "needs --account",
    ),
    (
        "a user name with a space",
        ["users", "add", "a b", "--role", "operator", "--password-stdin"],
        "is not a user name",
    ),
    (
        "a report ending before it starts",
        ["report", "--number", "4008207788", "--from", "2026-11-30", "--to", "2026-11-01"],
        "--to 2026-11-01 is before --from 2026-11-30",
    ),
    (
        "a report from a day February does not have",
        ["report", "--number", "4008207788", "--from", "2026-02-30", "--to", "2026-03-01"],
        "is not a date like 2026-11-30",
    ),
    (
        "a subscriber user of an account nobody has",
        [
            "users",
            "add",
            "staff1",
            "--role",
            "subscriber-staff",
            "--account",
            "4009999999",
            "--password-stdin",
        ],
        "users: no account 4009999999: name a 400 number of the plans or tariffs.yaml, or a "
        "subscriber of the inventory (hotline400 numbers apply --account)",
    ),
    ("users before any router ran", ["users", "list"], "does not exist"),
    (
        "a user added before any router ran",
        ["users", "add", "ops1", "--role", "operator", "--password-stdin"],
        "does not exist",
    ),
    (
        "users without their configuration",
        ["users", "list", "--config", MISSING],
        f"no configuration directory {MISSING}",
    ),
    (
        "a report before any router ran",
        ["report", "--number", "4008207788", "--from", "2026-11-01", "--to", "2026-11-30"],
        "does not exist",
    ),
    (
        "a report without its configuration",
        [
            "report",
            "--config",
            MISSING,
            "--number",
            "4008207788",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
        ],
        f"no configuration directory {MISSING}",
    ),
    ("the console before any router ran", ["web"], "does not exist"),
    ("the console on an address that is none", ["web", "--listen", "8400"], "give HOST:PORT"),
    (
        "the console without its configuration",
        ["web", "--config", MISSING],
        "no configuration directory",
    ),
    (
        "a console sending its cookie in clear beyond this machine",
        ["web", "--listen", "0.0.0.0:8400", "--insecure-cookies"],
        "--insecure-cookies on 0.0.0.0: a session cookie",
    ),
    # numbers and service providers
    ("an import of a missing file", ["numbers", "import", MISSING], f"cannot read {MISSING}"),
    (
        "an import of a list with a line that is no number",
        ["numbers", "import", "config/router.yaml"],
        "config/router.yaml:2: 'listen:127.0.0.1:4573' is not a 400 number",
    ),
    (
        "a search in a segment that is none",
        ["numbers", "search", "--segment", "5008"],
        "argument --segment: '5008' is not a segment like 4008",
    ),
    (
        "a search for a pattern of letters",
        ["numbers", "search", "--pattern", "eight"],
        "argument --pattern: 'eight' is not a pattern of 1 to 10 digits",
    ),
    (
        "a search for a status that is none",
        ["numbers", "search", "--status", "sold"],
        "argument --status: invalid choice: 'sold'",
    ),
    (
        "a search for ten million numbers",
        ["numbers", "search", "--limit", "10000000"],
        "argument --limit: '10000000' is not a whole number from 1 to 10,000",
    ),
    (
        "a reservation for nobody",
        ["numbers", "reserve", "4008207788"],
        "the following arguments are required: --by",
    ),
    (
        "a reservation of a number not in the inventory",
        ["numbers", "reserve", "4009999999", "--by", "sp-east"],
        "4009999999 is not in the inventory (hotline400 numbers import)",
    ),
    (
        "a reservation at a time of no form",
        ["numbers", "reserve", "4008207788", "--by", "sp-east", "--at", "tomorrow"],
        "argument --at: 'tomorrow' is not a time",
    ),
    (
        "a rejection without a reason",
        ["numbers", "reject", "4008207788"],
        "the following arguments are required: --reason",
    ),
    (
        "an application with half the real-name material",
        ["numbers", "apply", "4008207788", "--account", "acme", "--licence", "91310000MA1FL0YY26"],
        "real-name material is --licence, --legal-rep and --id-number together",
    ),
    (
        "an application for an account of no name",
        ["numbers", "apply", "4008207788", "--account", "a b"],
        "argument --account: 'a b' is not a name",
    ),
    (
        "a suspension of a number with letters",
        ["numbers", "suspend", "4008abc788"],
        "'4008abc788' is not a 400 number",
    ),
    (
        "a tick at an impossible day",
        ["numbers", "tick", "--at", "2026-02-30"],
        "February 2026 has 28 days",
    ),
    (
        "a provider with an ID of letters",
        [
            "providers",
            "add",
            "sp-east",
            "--full-name",
            "E",
            "--licence",
            "91310000MA1FL0XX1C",
            "--legal-rep",
            "W",
            "--id-number",
            "abc",
        ],
        "argument --id-number: an ID number is 18 characters: 17 digits, then a digit or X",
    ),
    (
        "a provider with a licence of letters",
        [
            "providers",
            "add",
            "sp-east",
            "--full-name",
            "E",
            "--licence",
            "licence",
            "--legal-rep",
            "W",
            "--id-number",
            "110101199003071233",
        ],
        "argument --licence: 'licence' is not a unified social credit code (18 digits and "
        "capitals)",
    ),
    (
        "a provider's ID number with one digit mistyped",
        [
            *("providers", "add", "sp-east", "--full-name", "E"),
            *("--licence", "91310000MA1FL0XX1C", "--legal-rep", "W"),
            *("--id-number", "110101199003071234"),
        ],
        "argument --id-number: the ID number's check character (the last) does not match the "
        "others, a character mistyped?",
    ),
    (
        "a provider's licence with one character mistyped",
        [
            *("providers", "add", "sp-east", "--full-name", "E"),
            *("--licence", "91310000MA1FL0XX1X", "--legal-rep", "W"),
            *("--id-number", "110101199003071233"),
        ],
        "argument --licence: 91310000MA1FL0XX1X is no unified social credit code: its check "
        "character (the last) is wrong, a character mistyped?",
    ),
    (
        "a provider name with a space",
        ["providers", "show", "sp east"],
        "argument name: 'sp east' is not a provider name",
    ),
    (
        "a payment to a provider named with capitals",
        ["account", "topup", "--provider", "SP-East", "--amount", "100"],
        "argument --provider: 'SP-East' is not a provider name",
    ),
    (
        "the account of a provider named with a space",
        ["account", "show", "--provider", "sp east"],
        "argument --provider: 'sp east' is not a provider name",
    ),
    (
        "a provider nobody added",
        ["providers", "show", "sp-north"],
        "no service provider sp-north (hotline400 providers list)",
    ),
    (
        "a threshold for a provider nobody added",
        ["providers", "set", "sp-north", "--low-balance-warning", "80"],
        "no service provider sp-north (hotline400 providers list)",
    ),
    (
        "a provider's threshold below 0",
        ["providers", "set", "sp-east", "--low-balance-warning", "-5"],
        "argument --low-balance-warning: '-5' is not a threshold",
    ),
    (
        "a provider's threshold in tenths of a fen",
        ["providers", "set", "sp-east", "--low-balance-warning", "50.005"],
        "argument --low-balance-warning: '50.005' is not a threshold like 50.00",
    ),
    (
        "a provider's threshold beyond any top-up",
        [
            "providers",
            "add",
            "sp-east",
            "--full-name",
            "E",
            "--licence",
            "91310000MA1FL0XX1C",
            "--legal-rep",
            "W",
            "--id-number",
            "110101199003071233",
            "--low-balance-warning",
            "1000000.01",
        ],
        "argument --low-balance-warning: '1000000.01': a threshold is at most 1,000,000.00 yuan",
    ),
    (
        "a provider's settings without a setting",
        ["providers", "set", "sp-east"],
        "the following arguments are required: --low-balance-warning",
    ),
]
PIPED_IN = {
    "a PIN of letters": "24a8\n",
    "a console password too short": "short\n",
    "a subscriber user without its account": "long enough password\n",
    "a user name with a space": "long enough password\n",
    "a user added before any router ran": "long enough password\n",
    "a subscriber user of an account nobody has": "long enough password\n",
}
"""What stands on stdin for a case; nothing for the others (no terminal either)."""
WITH_BOOKS = {
    "a top-up to a number without an account",
    "an import of a missing file",
    "an import of a list with a line that is no number",
    "a reservation of a number not in the inventory",
    "an application with half the real-name material",
    "a provider nobody added",
    "a threshold for a provider nobody added",
    "terms of a number without an account",
    "a subscriber user of an account nobody has",
}
"""Cases run where a router's database exists (made by `db upgrade` before the snapshot)."""


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under `directory` with its size and modification time.

    SQLite's write-ahead log and its index are left out: they come and go as connections
    open and close. Anything written reaches the database file itself when the last
    connection closes (a checkpoint), so a write still shows there.
    """
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and not path.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SHIPPED_CONFIG, tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("what", "argv", "complaint"),
    [pytest.param(what, argv, complaint, id=what) for what, argv, complaint in BAD_INPUTS],
)
def test_a_bad_input_ends_in_one_line_on_stderr_and_writes_nothing(
    what: str,
    argv: list[str],
    complaint: str,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PIPED_IN.get(what, "")))
    if what in WITH_BOOKS:
        assert main(["db", "upgrade"]) == 0
        capsys.readouterr()
    before = snapshot(workdir)
    try:
        code = main(argv)
    except SystemExit as exited:  # argparse refusing the command line
        code = exited.code
    out, err = capsys.readouterr()
    assert code not in (0, None)
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert complaint in err
    assert "Traceback" not in err
    assert out == ""
    assert snapshot(workdir) == before


def test_the_console_on_a_taken_address_is_one_line_and_exit_1(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert main(["web", "--listen", f"127.0.0.1:{port}"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"hotline400 web: console address 127.0.0.1:{port} is already in use (another "
        "hotline400 web?): stop the other process or choose another --listen\n"
    )


BACKWARDS = [
    ["rate", "--from", "2026-12-07", "--to", "2026-12-01"],
    ["report", "--number", "4008207788", "--from", "2026-12-07", "--to", "2026-12-01"],
    ["cdr", "--since", "2026-12-07 10:00", "--until", "2026-12-07 09:00"],
]


@pytest.mark.parametrize("argv", BACKWARDS, ids=lambda argv: argv[0])
def test_a_range_that_ends_before_it_starts_is_refused_as_a_usage_error(
    argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hotline400 {argv[0]}: ") and " is before " in err
    assert err.endswith(f"(see hotline400 {argv[0]} --help)\n")


UNREADABLE_SETTINGS = {
    "not UTF-8": lambda path: path.write_bytes(b'listen: "\xff\xfe"\n'),
    "a directory": lambda path: path.mkdir(),
}
"""What stands where router.yaml should be, unreadable as settings."""
UNREADABLE_SAYS = {
    "not UTF-8": "config/router.yaml:1 (file): not UTF-8 text: byte 0xff at column 10",
    "a directory": "config/router.yaml:1 (file): cannot read: ",
}
"""The start of the one located line each of them is refused with."""
READING_SETTINGS = [
    ["cdr"],
    ["serve"],
    ["web"],
    ["db", "upgrade"],
    ["bill", "--month", "2026-11"],
    ["account", "show", "--number", "4006001234"],
    ["rate", "--from", "2026-11-01", "--to", "2026-11-02"],
    ["numbers", "search"],
    ["providers", "list"],
    ["users", "list"],
    ["report", "--number", "4008207788", "--from", "2026-11-01", "--to", "2026-11-30"],
    ["recordings", "purge", "--dry-run"],
    ["webhooks", "list"],
]


@pytest.mark.parametrize("argv", READING_SETTINGS, ids=" ".join)
@pytest.mark.parametrize("unreadable", UNREADABLE_SETTINGS)
def test_a_router_yaml_that_cannot_be_read_is_one_located_line(
    unreadable: str, argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = workdir / "config" / "router.yaml"
    settings.unlink()
    UNREADABLE_SETTINGS[unreadable](settings)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1 and UNREADABLE_SAYS[unreadable] in err, err
    assert out == ""


@pytest.mark.parametrize("unreadable", UNREADABLE_SETTINGS)
def test_check_lists_a_router_yaml_that_cannot_be_read_as_a_problem(
    unreadable: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = workdir / "config" / "router.yaml"
    settings.unlink()
    UNREADABLE_SETTINGS[unreadable](settings)
    assert main(["check"]) == 1
    assert UNREADABLE_SAYS[unreadable] in capsys.readouterr().out


def _options(
    parser: argparse.ArgumentParser, path: str = "hotline400"
) -> list[tuple[str, argparse.Action]]:
    """(command, option) for every option of every command, --help excepted."""
    found: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _options(sub, f"{path} {name}")
        elif action.option_strings and not isinstance(action, argparse._HelpAction):
            found.append((path, action))
    return found


def test_every_option_of_every_command_says_what_it_does() -> None:
    undocumented = [
        f"{command} {'/'.join(action.option_strings)}"
        for command, action in _options(build_parser())
        if not (action.help or "").strip()
    ]
    assert undocumented == []


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("hotline400 0.")


def test_a_broken_plan_blocks_neither_account_show_nor_bill(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    plan = workdir / "config" / "plans" / "4001234567.yaml"
    plan.write_text(plan.read_text(encoding="utf-8") + "\nnonsense: [\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["account", "show", "--number", "4006001234"]) == 0
    assert main(["bill", "--month", "2026-11", "--number", "4006001234"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("4006001234\n  package ") and err == ""


class ClosedPipe(io.StringIO):
    """stdout whose reader has gone, as `hotline400 cdr | head -1` leaves it."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_stops_early_ends_the_command_quietly(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert main(["check"]) == 141
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("when", ["2026-11-23", "2026-11-23 10:00", "2026-11-23T10:00:00+08:00"])
def test_every_command_reads_a_time_in_each_form(
    when: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade"]) == 0
    topup = ["account", "topup", "--number", "4006001234", "--amount", "10", "--at", when]
    assert main(topup) == 0
    assert main(["simulate", *CALL, "--at", when]) == 0
    assert main(["cdr", "--since", when, "--until", when]) == 0
    out = capsys.readouterr().out
    assert "booked payment 10.00 to 4006001234" in out
    assert "at Mon 2026-11-23 " in out


def test_callgen_with_callers_from_a_file_that_is_not_text_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "callers.txt").write_bytes(b"\xff\xfe0\x001\x00")
    assert main([*CALLGEN, "--callers", "callers.txt"]) == 1
    assert capsys.readouterr() == (
        "",
        "callgen: cannot read callers.txt: not UTF-8 text (one caller ID a line)\n",
    )


def test_a_subscriber_user_works_for_a_number_of_the_configuration_or_a_known_subscriber(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["db", "upgrade"]) == 0
    provider = ["providers", "add", "sp-east", "--full-name", "East Telecom"]
    provider += ["--licence", "91310000MA1FL0XX1C", "--legal-rep", "Wang Wei"]
    assert main([*provider, "--id-number", "110101199003071233"]) == 0
    (workdir / "pool.txt").write_text("4008200888\n", encoding="utf-8")
    assert main(["numbers", "import", "pool.txt"]) == 0
    assert main(["numbers", "reserve", "4008200888", "--by", "sp-east"]) == 0
    assert main(["numbers", "apply", "4008200888", "--account", "acme"]) == 0
    capsys.readouterr()
    for name, account in (("shop1", "4008207788"), ("acme1", "acme"), ("held1", "4008200888")):
        monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
        add = ["users", "add", name, "--role", "subscriber-admin", "--account", account]
        assert main([*add, "--password-stdin"]) == 0
    assert capsys.readouterr().err == ""
