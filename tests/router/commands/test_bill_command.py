"""`hotline400 bill`: the monthly statement of a 400 number, read from each store engine (a
SQLite file, PostgreSQL), and closing the month.

The month of 4000000008 (package `office`: rent 50.00, 0.10/min answered in its home area
010, 0.30/min long distance, minimum consumption 20.00; recording switched on 2026-11-05
for 100.00):

    2026-10-20  payment 100.00                                   -> opening balance 100.00
    2026-11-05  10:00 北京 caller, answered locally, 150 s          0.30
                15:00 山东 caller, answered long distance, 61 s     0.60
    2026-11-10  payment 200.00
    2026-11-30  23:58 山东 caller, long distance, 300 s into Dec 1  1.50  (a November call)
    2026-12-01  00:00:10 answered after ringing from Nov 30 23:59:40      (a December call)

Calls 2.40; at close: rent 50.00, recording 100.00, top-up 20.00 - 2.40 = 17.60; closing
balance 100.00 + 200.00 - 50.00 - 2.40 - 100.00 - 17.60 = 130.00.
"""

import asyncio
import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from tests.conftest import opened_store, store_url_of
from tests.xlsx_reading import Cell, read_workbook

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4000000008"
D = Decimal

TARIFFS = """\
version: "v1"
caller_tariffs:
  fixed: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
packages:
  office:
    monthly_rent: 50.00
    local: {per_seconds: 60, charge: 0.10}
    long_distance: {per_seconds: 60, charge: 0.30}
    minimum_monthly: 20.00
accounts:
  "4000000008":
    package: office
    features: {recording: 2026-11-05}
"""
PLAN = """\
number: "4000000008"
name: Office line
home_area_code: "010"
default: {target: "01087654321"}
"""


def at(month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


def answered_call(
    call_id: str,
    started: datetime,
    caller: str,
    province: str,
    destination: str,
    talk: int,
    shares: tuple[str, str] | None,
    ring: int = 0,
) -> list[CdrOp]:
    """The ops the router writes for an answered call, priced (caller, callee) or not."""
    answered = started + timedelta(seconds=ring)
    cdr = CDR(call_id, NUMBER, caller, caller, "fixed", started, CallerRegion(province))
    leg = Leg(1, destination, "ANSWER", started, ring, talk, ForwardReason.PRIMARY)
    finish = {
        "answered_at": answered,
        "ended_at": answered + timedelta(seconds=talk),
        "billable_seconds": talk,
        "outcome": Outcome.ANSWERED,
    }
    ops: list[CdrOp] = [StartCall(cdr), AddLeg(call_id, leg), FinishCall(call_id, finish)]
    if shares is not None:
        caller_share, callee_share = D(shares[0]), D(shares[1])
        money = {
            "caller_share": caller_share,
            "callee_share": callee_share,
            "total": caller_share + callee_share,
            "tariff_id": "office@v1",
        }
        entry = LedgerEntry(NUMBER, answered, -callee_share, LedgerKind.CALL, call_id)
        ops += [FinishCall(call_id, money), PostLedger(entry)]
    return ops


def payment(when: datetime, amount: str, ref: str) -> PostLedger:
    return PostLedger(LedgerEntry(NUMBER, when, D(amount), LedgerKind.PAYMENT, ref))


THE_MONTH = [
    payment(at(10, 20, 9, 0), "100.00", "receipt-oct"),
    *answered_call(
        "c1", at(11, 5, 10, 0), "01062345678", "北京", "01087654321", 150, ("0.22", "0.30")
    ),
    *answered_call(
        "c2", at(11, 5, 15, 0), "053188889999", "山东", "053188880000", 61, ("0.22", "0.60")
    ),
    payment(at(11, 10, 9, 0), "200.00", "receipt-nov"),
    *answered_call(
        "c3", at(11, 30, 23, 58), "053188889999", "山东", "053188880000", 300, ("0.44", "1.50")
    ),
    *answered_call(
        "c4",
        at(11, 30, 23, 59, 40),
        "01062345678",
        "北京",
        "01087654321",
        60,
        ("0.22", "0.10"),
        ring=30,
    ),
]


async def write(url: str, ops: Sequence[CdrOp]) -> None:
    async with opened_store(url) as store:
        await store.apply(ops)


async def read_ledger(url: str) -> list[LedgerEntry]:
    async with opened_store(url) as store:
        return await store.ledger(NUMBER)


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    """A config directory whose router.yaml names a store holding THE_MONTH."""
    config = tmp_path / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nspool_dir: "{tmp_path / "spool"}"\n', encoding="utf-8"
    )
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    (config / "plans" / f"{NUMBER}.yaml").write_text(PLAN, encoding="utf-8")
    asyncio.run(write(store_url, THE_MONTH))
    return config


def bill(config: Path, capsys: pytest.CaptureFixture[str], *args: str, status: int = 0) -> str:
    capsys.readouterr()
    assert main(["bill", "--config", str(config), *args]) == status
    captured = capsys.readouterr()
    return captured.out + captured.err


def statement(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    [found] = json.loads(bill(config, capsys, "--format", "json", *args))
    return found


def test_the_statement_counts_the_month_and_what_closing_will_book(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = statement(config, capsys, "--month", "2026-11")
    money = {
        name: found[name]
        for name in (
            "opening_balance",
            "payments",
            "rent",
            "call_charges",
            "feature_fees",
            "minimum_topup",
            "adjustments",
            "closing_balance",
        )
    }
    assert money == {
        "opening_balance": "100.00",
        "payments": "200.00",
        "rent": "50.00",
        "call_charges": "2.40",
        "feature_fees": "100.00",
        "minimum_topup": "17.60",
        "adjustments": "0.00",
        "closing_balance": "130.00",
    }
    assert (found["calls"], found["billable_seconds"], found["minutes"]) == (3, 511, "8.52")
    assert found["closed"] is False
    assert [
        (e["kind"], e["ref"], e["at"], e["amount"]) for e in found["to_be_booked_at_close"]
    ] == [
        ("rent", "2026-11", "2026-11-01T00:00:00+08:00", "50.00"),
        ("feature_fee", "recording@2026-11-05", "2026-11-05T00:00:00+08:00", "100.00"),
        ("minimum_topup", "2026-11", "2026-11-30T23:59:59.999999+08:00", "17.60"),
    ]  # charges, positive as the totals they are counted in
    assert [(d["day"], d["calls"], d["minutes"], d["charges"]) for d in found["by_day"]] == [
        ("2026-11-05", 2, "3.52", "0.90"),
        ("2026-11-30", 1, "5.00", "1.50"),
    ]
    assert [
        (p["province"], p["calls"], p["minutes"], p["charges"]) for p in found["by_province"]
    ] == [
        ("北京", 1, "2.50", "0.30"),
        ("山东", 2, "6.02", "2.10"),
    ]


def test_a_call_answered_at_2358_on_the_last_day_is_billed_in_that_month(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    november = statement(config, capsys, "--month", "2026-11")
    december = statement(config, capsys, "--month", "2026-12")
    assert "2026-11-30" in [day["day"] for day in november["by_day"]]
    assert [(d["day"], d["calls"], d["charges"]) for d in december["by_day"]] == [
        ("2026-12-01", 1, "0.10")  # c4: rang from Nov 30 23:59:40, answered Dec 1
    ]


def test_the_table_marks_what_closing_will_book(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = bill(config, capsys, "--month", "2026-11")
    assert output.splitlines()[:9] == [
        "4000000008  2026-11  package office",
        "  opening balance       100.00",
        "  payments             +200.00",
        "  rent                  -50.00  to be booked at close",
        "  calls                  -2.40  3 call(s), 8.52 min",
        "  feature fees         -100.00  to be booked at close",
        "  minimum top-up        -17.60  to be booked at close",
        "  adjustments             0.00",
        "  closing balance       130.00",
    ]
    assert "  山东                 2     6.02     2.10" in output
    assert "--close --yes books the entries marked 'to be booked at close'" in output


def test_the_close_it_points_at_is_of_the_configuration_and_number_shown(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Copied as printed, the command closes what the statement showed: the month of that one
    number in that store, never every account's, nor those of ./config's store."""
    output = bill(config, capsys, "--month", "2026-11", "--number", NUMBER)
    assert output.splitlines()[-1] == (
        f"not closed: hotline400 bill --config {config} --month 2026-11 --number {NUMBER} "
        "--close --yes books the entries marked 'to be booked at close'"
    )


def test_closing_books_rent_fees_and_top_up_dated_inside_the_month_once(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    close = ("--month", "2026-11", "--close", "--yes")
    closed = statement(config, capsys, *close, "--today", "2026-12-01")
    after_first = asyncio.run(read_ledger(store_url_of(config)))
    again = bill(config, capsys, *close, "--today", "2026-12-02", status=1)
    after_second = asyncio.run(read_ledger(store_url_of(config)))
    assert after_second == after_first
    assert again == (
        "not closed: 2026-11 is already closed for 4000000008 (rent 50.00, minimum_topup "
        "17.60); to undo it: hotline400 bill --month 2026-11 --number 4000000008 --reopen "
        "--by NAME --reason WHY\n"
    )
    booked = [(e.kind, e.ref, e.at, e.amount) for e in after_first if e.ref.startswith("20")]
    assert booked == [
        (LedgerKind.RENT, "2026-11", at(11, 1, 0, 0), D("-50.00")),
        (
            LedgerKind.MINIMUM_TOPUP,
            "2026-11",
            at(12, 1, 0, 0) - timedelta(microseconds=1),
            D("-17.60"),
        ),
    ]
    assert [e.ref for e in after_first if e.kind is LedgerKind.FEATURE_FEE] == [
        "recording@2026-11-05"
    ]
    assert (closed["closed"], closed["to_be_booked_at_close"], closed["closing_balance"]) == (
        True,
        [],
        "130.00",
    )
    december = statement(config, capsys, "--month", "2026-12")
    assert december["opening_balance"] == "130.00"


def test_a_month_is_not_closed_before_it_is_over(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = bill(
        config, capsys, "--month", "2026-11", "--close", "--today", "2026-11-30", status=1
    )
    assert "not closed: 2026-11 is not over yet (today is 2026-11-30)" in output
    assert [e.kind for e in asyncio.run(read_ledger(store_url_of(config)))].count(
        LedgerKind.RENT
    ) == 0


def test_a_month_is_not_closed_while_the_routers_journal_holds_unwritten_cdrs(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "spool" / "cdr.journal"
    journal.parent.mkdir()
    journal.write_text('{"op": "finish"}\n', encoding="utf-8")  # the store was down
    output = bill(
        config, capsys, "--month", "2026-11", "--close", "--today", "2026-12-01", status=1
    )
    assert f"not closed: the router's CDR journal {journal} holds 17 bytes of writes" in output
    assert "close when the journal is empty" in output
    assert journal.read_text(encoding="utf-8") == '{"op": "finish"}\n'  # left as it was
    journal.write_text("", encoding="utf-8")  # replayed
    bill(config, capsys, "--month", "2026-11", "--close", "--today", "2026-12-01")


def test_a_month_with_answered_calls_lacking_a_price_is_not_closed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unpriced = answered_call("c5", at(11, 6, 9, 0), "01062345678", "北京", "01087654321", 30, None)
    asyncio.run(write(store_url_of(config), unpriced))
    found = statement(config, capsys, "--month", "2026-11")
    output = bill(
        config, capsys, "--month", "2026-11", "--close", "--today", "2026-12-01", status=1
    )
    assert found["unpriced_calls"] == 1
    assert "answered calls of 2026-11 have no price yet (4000000008: 1)" in output
    assert "hotline400 rate --from 2026-10-31 --to 2026-11-30" in output


def test_the_rating_a_refused_close_names_prices_a_call_that_rang_from_the_month_before(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Answered on November 1 at 00:00:10 after ringing from October 31 23:59:50: a
    November call, which `rate` finds by the day it started."""
    unpriced = answered_call(
        "c0", at(10, 31, 23, 59, 50), "01062345678", "北京", "01087654321", 30, None, ring=20
    )
    asyncio.run(write(store_url_of(config), unpriced))
    output = bill(
        config, capsys, "--month", "2026-11", "--close", "--today", "2026-12-01", status=1
    )
    hint = output.split("price them first: hotline400 ")[1].split()
    capsys.readouterr()
    assert main([*hint, "--config", str(config)]) == 0
    assert "priced 1," in capsys.readouterr().out
    bill(config, capsys, "--month", "2026-11", "--close", "--today", "2026-12-01")


def test_csv_has_one_line_per_subscriber(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(
        csv.DictReader(io.StringIO(bill(config, capsys, "--month", "2026-11", "--format", "csv")))
    )
    assert [(r["number"], r["closing_balance"], r["to_be_booked_at_close"]) for r in rows] == [
        (NUMBER, "130.00", "-167.60")
    ]


def test_csv_signs_each_amount_as_the_table_and_the_ledger_do(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CSV's amounts are signed from the account's side, as the table shows them and
    the ledger books them (rating/ledger.py): rent, calls, feature fees, the minimum top-up
    and number fees negative, payments positive, adjustments either; what closing will
    book is the sum of its entries, negative too. So the columns from opening_balance to
    adjustments add up to closing_balance."""
    table = bill(config, capsys, "--month", "2026-11")
    [row] = csv.DictReader(
        io.StringIO(bill(config, capsys, "--month", "2026-11", "--format", "csv"))
    )
    shown = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:6]}
    assert (shown["rent"], shown["calls"]) == ("-50.00", "-2.40")
    amounts = ("payments", "rent", "call_charges", "feature_fees", "minimum_topup", "adjustments")
    assert {name: row[name] for name in amounts} == {
        "payments": "200.00",
        "rent": "-50.00",
        "call_charges": "-2.40",
        "feature_fees": "-100.00",
        "minimum_topup": "-17.60",
        "adjustments": "0.00",
    }
    assert (row["number_fees"], row["to_be_booked_at_close"]) == ("0.00", "-167.60")
    moved = sum(Decimal(row[name]) for name in (*amounts, "number_fees"))
    assert Decimal(row["opening_balance"]) + moved == Decimal(row["closing_balance"])


def test_a_number_without_a_recorded_holder_names_none(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """4000000008 has an account and a plan but is not in the inventory: nobody is recorded
    as its holder, so its statement is headed without a holder, and the exports leave the
    holder and provider empty."""
    heading = bill(config, capsys, "--month", "2026-11").splitlines()[0]
    [row] = csv.DictReader(
        io.StringIO(bill(config, capsys, "--month", "2026-11", "--format", "csv"))
    )
    exported = statement(config, capsys, "--month", "2026-11")
    assert heading == "4000000008  2026-11  package office"
    assert (row["holder"], row["provider"]) == ("", "")
    assert (exported["holder"], exported["provider"]) == (None, None)


def test_xlsx_has_the_csv_lines_with_amounts_as_numbers_and_the_span_as_date_times(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same line per statement as the CSV; Excel sees amounts as numbers it can add up,
    the month as text (a CSV's 2026-11 turns into a date) and `from`/`until` as local
    date-times under a heading that names the zone."""
    output = tmp_path / "statements.xlsx"
    export = ("--month", "2026-11", "--format", "xlsx", "--output", str(output))
    assert main(["bill", "--config", str(config), *export]) == 0
    sheet = read_workbook(output)["statements"]
    csv_text = bill(config, capsys, "--month", "2026-11", "--format", "csv")
    csv_header = next(csv.reader(io.StringIO(csv_text)))
    zoned = ("from", "until")
    assert sheet.header == [f"{n} (Asia/Shanghai)" if n in zoned else n for n in csv_header]
    [line] = sheet.rows
    assert (line["number"], line["month"], line["package"]) == (
        Cell(NUMBER, "@"),
        Cell("2026-11", "@"),
        Cell("office", "@"),
    )
    assert line["closed"].value is False
    assert line["closing_balance"] == Cell(130.0, "0.00")
    assert line["to_be_booked_at_close"] == Cell(-167.6, "0.00")
    assert (line["call_charges"].value, line["minutes"].value) == (-2.4, 8.52)
    assert (line["calls"], line["billable_seconds"]) == (Cell(3, "0"), Cell(511, "0"))
    assert line["from (Asia/Shanghai)"].as_time() == datetime(2026, 11, 1)
    assert line["until (Asia/Shanghai)"].as_time() == datetime(2026, 12, 1)


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--format", "xlsx"], "--format xlsx writes a workbook: give --output FILE"),
        (["--format", "json", "--output", "x.xlsx"], "--output is for --format xlsx; json goes"),
    ],
)
def test_xlsx_goes_to_a_file_and_only_xlsx_does(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], refusal: str
) -> None:
    capsys.readouterr()
    assert main(["bill", "--config", str(config), "--month", "2026-11", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"hotline400 bill: {refusal}") and err.count("\n") == 1


def test_an_unknown_number_or_month_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = bill(config, capsys, "--month", "2026-11", "--number", "4000000099", status=1)
    assert "4000000099 has no account in tariffs.yaml (accounts: 4000000008)" in output
    with pytest.raises(SystemExit):
        main(["bill", "--config", str(config), "--month", "2026-13"])


def test_closing_says_how_many_entries_it_booked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = asyncio.run(read_ledger(store_url_of(config)))
    close = ("--month", "2026-11", "--close", "--today", "2026-12-01")
    shown = bill(config, capsys, *close)
    assert shown.splitlines()[-1] == (
        "dry run: closing 2026-11 would book 3 ledger entries (167.60 in all), marked "
        "'to be booked at close'; add --yes to book them"
    )
    assert asyncio.run(read_ledger(store_url_of(config))) == before
    booked = bill(config, capsys, *close, "--yes")
    assert booked.splitlines()[-1] == "2026-11 closed for 1 account(s): 3 ledger entries booked"
    assert "to be booked at close" not in booked


def test_a_month_before_the_account_was_opened_is_not_closed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the tariffs give no `opened` day: the first ledger entry (2026-10-20) tells it
    before = asyncio.run(read_ledger(store_url_of(config)))
    for month in ("1999-01", "2026-09"):
        output = bill(config, capsys, "--month", month, "--close", "--yes", status=1)
        assert output == (
            f"not closed: 4000000008 was opened on 2026-10-20: {month} is before that\n"
        )
    assert asyncio.run(read_ledger(store_url_of(config))) == before


def test_the_month_the_account_opened_in_is_closed_for_its_days_in_service(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opened on 2026-11-05: 26 of November's 30 days, so 26/30 of the rent (50.00) and of
    the minimum (20.00), each to the fen; the calls (2.40) count against that minimum."""
    tariffs = config / "tariffs.yaml"
    tariffs.write_text(
        tariffs.read_text(encoding="utf-8").replace(
            "    package: office\n", "    package: office\n    opened: 2026-11-05\n"
        ),
        encoding="utf-8",
    )
    bill(config, capsys, "--month", "2026-11", "--close", "--yes", "--today", "2026-12-01")
    closed = statement(config, capsys, "--month", "2026-11")
    assert (closed["rent"], closed["minimum_topup"], closed["closing_balance"]) == (
        "43.33",
        "14.93",
        "139.34",
    )
    booked = asyncio.run(read_ledger(store_url_of(config)))
    assert [(e.amount, e.note) for e in booked if e.kind is LedgerKind.RENT] == [
        (D("-43.33"), "office rent 2026-11 (26 of 30 days)")
    ]
    december = statement(config, capsys, "--month", "2026-12")
    assert (december["rent"], december["minimum_topup"]) == ("50.00", "19.90")


def test_reopening_reverses_a_close_recording_who_when_and_why_and_the_month_closes_again(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    close = ("--month", "2026-11", "--close", "--yes", "--today", "2026-12-01")
    reopen = ("--month", "2026-11", "--reopen", "--by", "li.wei", "--reason", "rent waived")
    bill(config, capsys, *close)
    shown = bill(config, capsys, *reopen, "--today", "2026-12-03")
    assert shown.splitlines()[-1] == (
        "dry run: reopening 2026-11 would book 2 adjustment(s), +67.60; add --yes to book them"
    )
    booked = bill(config, capsys, *reopen, "--yes", "--today", "2026-12-03")
    assert booked.splitlines() == [
        "4000000008  reopen 2026-11#1 rent" + " " * 13 + "+50.00  reverses rent 2026-11: "
        "reopened 2026-12-03 by li.wei: rent waived",
        "4000000008  reopen 2026-11#1 minimum_topup" + " " * 6 + "+17.60  reverses "
        "minimum_topup 2026-11: "
        "reopened 2026-12-03 by li.wei: rent waived",
        "2026-11 reopened: 2 adjustment(s) booked, +67.60",
    ]
    reopened = statement(config, capsys, "--month", "2026-11")
    assert (reopened["closed"], reopened["adjustments"], reopened["closing_balance"]) == (
        False,
        "67.60",
        "130.00",  # the close still to be booked counts in, as before the first close
    )
    assert bill(config, capsys, *reopen, status=1).startswith("not reopened: 2026-11 is not closed")
    again = statement(config, capsys, *close)
    assert (again["closed"], again["closing_balance"]) == (True, "130.00")
    refs = [(e.kind, e.ref) for e in asyncio.run(read_ledger(store_url_of(config)))]
    assert (LedgerKind.RENT, "2026-11#2") in refs and (LedgerKind.RENT, "2026-11") in refs


def test_a_reopened_month_marks_only_what_is_still_to_be_booked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill(config, capsys, "--month", "2026-11", "--close", "--yes", "--today", "2026-12-01")
    reopen = ("--month", "2026-11", "--reopen", "--by", "li.wei", "--reason", "rent waived")
    bill(config, capsys, *reopen, "--yes", "--today", "2026-12-03")
    rows = bill(config, capsys, "--month", "2026-11").splitlines()
    # the first close's 50.00 stays booked (its reversal is an adjustment); the second
    # close has its own 50.00 still to book
    assert "  rent                 -100.00  50.00 of it to be booked at close" in rows
    assert "  minimum top-up        -35.20  17.60 of it to be booked at close" in rows
    assert "  feature fees         -100.00" in rows  # booked at the first close, kept
    assert "  adjustments           +67.60" in rows


def test_reopening_needs_a_name_and_a_reason_and_a_closed_month(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = asyncio.run(read_ledger(store_url_of(config)))
    output = bill(config, capsys, "--month", "2026-11", "--reopen", "--by", "li.wei", status=2)
    assert output == (
        "hotline400 bill: --reopen needs --by NAME and --reason TEXT: both go on the ledger"
        " (see hotline400 bill --help)\n"
    )
    output = bill(
        config, capsys, "--month", "2026-11", "--reopen", "--by", "a", "--reason", "b", status=1
    )
    assert output == "not reopened: 2026-11 is not closed for 4000000008: nothing to reopen\n"
    assert asyncio.run(read_ledger(store_url_of(config))) == before
