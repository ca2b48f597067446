"""`hotline400 bill --month 2026-11`: each subscriber's monthly statement: rent, calls and
minutes by day and by caller province, charges, feature fees, minimum-consumption top-up,
payments, adjustments, opening and closing balance.

`--close` shows what closing the month owes (rating.closing says what, dated when, and why
only once) and `--close --yes` books it; a month not over, with unpriced calls, before the
account was opened or already closed is refused, since a typo on an append-only ledger
costs real money; what it books raises the low-balance warning of a prepaid balance it takes
below its threshold (router.money.booking_alerts). `--reopen --by NAME --reason TEXT [--yes]`
reverses a close with compensating adjustments that record who, when and why. Without
`--close` the statement already counts the closing entries, marked "to be booked at close",
so its closing balance is the one the month will end with.

A month the number changed hands in (it came back to the pool and was taken again within
the month) has a statement per holding, headed with the part of the month it held; each is
charged its own calls and fees, and rent and minimum in proportion to its days, and closing
the month closes them all. Every statement is headed with its holder, the subscriber and
its service provider as the inventory records them ("holder alpha (provider sp-east)"),
so two statements of one month tell whose each is; a number with no recorded holder (one
outside the inventory) is headed as before.

The table is for a person; JSON carries everything, charges as positive amounts (closing =
opening - charges + payments + adjustments), the entries closing will book too (rent
"50.00", not the ledger's "-50.00"): `to_be_booked_at_close`, counted in the charges, and
`to_be_booked_elsewhere`, on its service provider's account. CSV is one line per statement
(the part of the month it covers in `from` and `until`, its `holder` and `provider`, empty
when none is recorded) without the breakdowns by day and province, its amounts signed as
the table shows them and the ledger books them (charges and what closing will book
negative, payments positive: closing = opening + the amounts), and `--format xlsx --output
FILE` writes the same lines as an Excel workbook (amounts as numbers, `from` and `until` as
local date-times).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import shlex
import sys
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rating.closing import MonthNotClosable
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.statement import Usage
from router.cli import DEFAULT_CONFIG
from router.commands.arguments import day, month, service_number
from router.commands.exits import refuse_usage
from router.commands.spreadsheet import spreadsheet_cell
from router.commands.workbook import ExportSheet, refuse_output, write_workbook
from router.money.billing import (
    MonthStatement,
    close_month,
    month_statements,
    named_holder,
    reopen_month,
)
from router.money.books import Books, BooksUnavailable, load_books
from router.storage.protocol import StoreUnavailable
from router.storage.spool import journal_path, unwritten_bytes

PENDING_MARK = "to be booked at close"
EXPORT_COLUMNS = (
    "number",
    "month",
    "package",
    "closed",
    "opening_balance",
    "payments",
    "rent",
    "call_charges",
    "feature_fees",
    "minimum_topup",
    "number_fees",
    "adjustments",
    "closing_balance",
    "calls",
    "billable_seconds",
    "minutes",
    "unpriced_calls",
    "to_be_booked_at_close",
    "from",
    "until",
    "holder",
    "provider",
)
"""The columns of the CSV and xlsx exports: a line per statement."""


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "bill", parents=[common], help="monthly statements; --close books rent and top-up"
    )
    parser.add_argument(
        "--month", required=True, type=month, metavar="YYYY-MM", help="the month billed"
    )
    parser.add_argument(
        "--number", type=service_number, help="only this 400 number (default: every account)"
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "xlsx"),
        default="table",
        help="table (for a person), csv or xlsx (a line per statement: per number, or per "
        "holding in a month it changed hands) or json (everything)",
    )
    parser.add_argument("--output", metavar="FILE", help="the workbook of --format xlsx")
    change = parser.add_mutually_exclusive_group()
    change.add_argument(
        "--close",
        action="store_true",
        help="show what closing books (rent, unbooked feature fees, minimum-consumption "
        "top-up); with --yes, book it. Refused for a month not over, with unpriced calls, "
        "before the account was opened, or closed already",
    )
    change.add_argument(
        "--reopen",
        action="store_true",
        help="show the adjustments that reverse the month's close; with --yes, book them "
        "(needs --by and --reason, recorded on each entry)",
    )
    parser.add_argument("--yes", action="store_true", help="book what --close or --reopen showed")
    parser.add_argument("--by", metavar="NAME", help="who reopens the month (with --reopen)")
    parser.add_argument("--reason", metavar="TEXT", help="why the month is reopened")
    parser.add_argument(
        "--today",
        type=day,
        metavar="YYYY-MM-DD",
        help="judge whether the month is over as of this date (default: today)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if refused := refuse_output(args, "bill"):
        return refused
    if args.yes and not (args.close or args.reopen):
        return refuse_usage("bill", "--yes books what --close or --reopen shows; give one of them")
    if args.reopen and not (args.by and args.by.strip() and args.reason and args.reason.strip()):
        return refuse_usage(
            "bill", "--reopen needs --by NAME and --reason TEXT: both go on the ledger"
        )
    try:
        books = load_books(args.config)
        numbers = books.numbers(args.number)
    except BooksUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    today = args.today or datetime.now(books.zone).date()
    try:
        if args.close:
            check_journal_written(books)
        if args.reopen:
            return _reopen(books, numbers, args, today)
        statements, booked = asyncio.run(
            _statements(books, numbers, args.month, args.close, args.yes, today)
        )
    except MonthNotClosable as error:
        print(f"not {'reopened' if args.reopen else 'closed'}: {error}", file=sys.stderr)
        return 1
    except StoreUnavailable as error:
        print(f"cannot use the store {books.store_url}: {error}", file=sys.stderr)
        return 1
    if args.format == "json":
        json.dump(
            [_to_json(s, books.zone) for s in statements], sys.stdout, ensure_ascii=False, indent=2
        )
        print()
    elif args.format == "csv":
        _write_csv(statements, books.zone)
    elif args.format == "xlsx":
        return _write_xlsx(statements, books.zone, Path(args.output))
    else:
        closing = None if not args.close else booked if args.yes else DRY_RUN
        _print_tables(statements, args.month, closing, books.zone, _close_command(args))
    return 0


def _close_command(args: argparse.Namespace) -> str:
    """The command that closes what was shown: its configuration and number kept, so that
    run as printed it closes neither every account nor those of another store."""
    words = ["hotline400", "bill"]
    if args.config != DEFAULT_CONFIG:
        words += ["--config", args.config]
    words += ["--month", args.month]
    if args.number:
        words += ["--number", args.number]
    return shlex.join([*words, "--close", "--yes"])


def check_journal_written(books: Books) -> None:
    """MonthNotClosable while this host's router holds CDR writes its store refused: calls
    of the month may be among them (their charges, or calls still in progress)."""
    journal = journal_path(books.settings.spool_dir)
    if waiting := unwritten_bytes(journal):
        raise MonthNotClosable(
            f"the router's CDR journal {journal} holds {waiting} bytes of writes the store has"
            " not taken yet (it was unavailable); the router replays them once the store"
            " answers: close when the journal is empty"
        )


DRY_RUN = -1
"""`booked_at_close` of a close shown, not booked."""


async def _statements(
    books: Books, numbers: Sequence[str], month: str, close: bool, book: bool, today: date
) -> tuple[list[MonthStatement], int]:
    """The statements, and how many entries closing booked."""
    async with books.store() as store, books.warnings() as watch:
        if close:
            closed, booked = await close_month(
                store,
                books.tariffs,
                numbers,
                month,
                today,
                book=book,
                watch=watch,
            )
            return [part for parts in closed.values() for part in parts], booked
        statements = [
            part
            for number in numbers
            for part in await month_statements(store, books.tariffs, number, month)
        ]
        return statements, 0


def _reopen(books: Books, numbers: Sequence[str], args: argparse.Namespace, today: date) -> int:
    async def reverse() -> list[LedgerEntry]:
        async with books.store() as store:
            return await reopen_month(
                store,
                books.tariffs,
                numbers,
                args.month,
                today,
                by=args.by.strip(),
                reason=args.reason.strip(),
                book=args.yes,
            )

    reversals = asyncio.run(reverse())
    for entry in reversals:
        print(f"{entry.number}  {entry.ref:<28}{entry.amount:>+12}  {entry.note}")
    total = sum((entry.amount for entry in reversals), ZERO)
    if args.yes:
        print(f"{args.month} reopened: {len(reversals)} adjustment(s) booked, {total:+}")
    else:
        print(
            f"dry run: reopening {args.month} would book {len(reversals)} adjustment(s), "
            f"{total:+}; add --yes to book them"
        )
    return 0


def _pending_total(statement: MonthStatement) -> Decimal:
    return sum((ZERO - entry.amount for entry in statement.pending), ZERO)


def _pending_anywhere(statement: MonthStatement) -> Decimal:
    """What closing books, on the statement's account and on its provider's."""
    elsewhere = sum((ZERO - entry.amount for entry in statement.pending_elsewhere), ZERO)
    return _pending_total(statement) + elsewhere


# --- table ---------------------------------------------------------------------------


def _print_tables(
    statements: Sequence[MonthStatement],
    month: str,
    booked_at_close: int | None,
    zone: ZoneInfo,
    close_command: str,
) -> None:
    """The statements; `booked_at_close` is None unless the month was being closed."""
    for index, statement in enumerate(statements):
        if index:
            print()
        _print_statement(statement, zone)
    if not statements:
        print("no accounts in the tariffs")
    elif booked_at_close == DRY_RUN:
        count = sum(len(s.pending) + len(s.pending_elsewhere) for s in statements)
        total = sum((_pending_anywhere(statement) for statement in statements), ZERO)
        print(
            f"\ndry run: closing {month} would book {count} ledger "
            f"entr{'y' if count == 1 else 'ies'} ({total} in all), marked '{PENDING_MARK}'; "
            "add --yes to book them"
        )
    elif booked_at_close is not None:
        print(
            f"\n{month} closed for {len({s.statement.number for s in statements})} account(s): "
            f"{booked_at_close} ledger entr{'y' if booked_at_close == 1 else 'ies'} booked"
        )
    elif any(not statement.closed for statement in statements):
        print(f"\nnot closed: {close_command} books the entries marked '{PENDING_MARK}'")


def _print_statement(month_statement: MonthStatement, zone: ZoneInfo) -> None:
    statement = month_statement.statement
    usage = statement.usage

    def pending(kind: LedgerKind, charged: Decimal) -> str:
        """The mark of a row closing still books. A reopened month's row also holds what the
        first close booked (its reversal is an adjustment): then only the rest is marked."""
        entries = [e for e in month_statement.pending if e.kind is kind]
        if not entries:
            return ""
        to_book = sum((ZERO - e.amount for e in entries), ZERO)
        return PENDING_MARK if to_book == charged else f"{to_book} of it {PENDING_MARK}"

    print(
        f"{statement.number}  {statement.month}  package {month_statement.package}"
        + _part_of(month_statement, zone)
        + _held_by(month_statement)
    )
    rows = [
        ("opening balance", str(statement.opening_balance), ""),
        ("payments", _signed(statement.payments), ""),
        ("rent", _signed(-statement.rent), pending(LedgerKind.RENT, statement.rent)),
        ("calls", _signed(-statement.call_charges), f"{usage.calls} call(s), {usage.minutes} min"),
        (
            "feature fees",
            _signed(-statement.feature_fees),
            pending(LedgerKind.FEATURE_FEE, statement.feature_fees),
        ),
        (
            "minimum top-up",
            _signed(-statement.minimum_topup),
            pending(LedgerKind.MINIMUM_TOPUP, statement.minimum_topup),
        ),
        ("adjustments", _signed(statement.adjustments), ""),
        ("closing balance", str(statement.closing_balance), ""),
    ]
    if statement.number_fees:  # a month the number was opened, selected or kept suspended
        fees = ("number fees", _signed(-statement.number_fees), "opening, selection, keeping")
        rows.insert(-2, fees)
    for label, amount, remark in rows:
        print(f"  {label:<16}{amount:>12}  {remark}".rstrip())
    for entry in month_statement.pending_elsewhere:
        print(f"  {entry.number} pays {ZERO - entry.amount} ({entry.ref}): {PENDING_MARK}")
    if month_statement.unpriced:
        print(f"  {month_statement.unpriced} answered call(s) have no price yet (hotline400 rate)")
    if statement.by_day:
        print()
        _print_usage("day", {day.isoformat(): usage for day, usage in statement.by_day.items()})
    if statement.by_province:
        print()
        _print_usage("caller province", statement.by_province)


def _part_of(month_statement: MonthStatement, zone: ZoneInfo) -> str:
    """'  holding 2026-12-01 00:00 to 2026-12-07 10:00' for one holding's part of a month
    the number changed hands in; nothing for a whole month."""
    since, until = month_statement.since, month_statement.until
    if since is None or until is None or not month_statement.partial(zone):
        return ""
    return f"  holding {_local(since, zone)} to {_local(until, zone)}"


def _held_by(month_statement: MonthStatement) -> str:
    """'  holder alpha (provider sp-east)': whose statement it is; nothing when no holder
    is recorded."""
    if month_statement.holder is None:
        return ""
    return f"  holder {named_holder(month_statement.holder, month_statement.provider)}"


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def _signed(amount: Decimal) -> str:
    """'+50.00', '-10.00', '0.00': what a line adds to the balance."""
    return f"{amount:+}" if amount else str(abs(amount))


def _print_usage(title: str, groups: dict[str, Usage]) -> None:
    header = (title, "calls", "minutes", "charges")
    rows = [
        (name, str(usage.calls), str(usage.minutes), str(usage.callee_charges))
        for name, usage in groups.items()
    ]
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            _pad(cell, width, right=column > 0)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  " + "  ".join(cells))


def _width(text: str) -> int:
    """Columns a terminal gives `text`: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill


# --- exports -------------------------------------------------------------------------


def _summary(month_statement: MonthStatement) -> dict[str, Any]:
    """The statement's figures, amounts as Decimal."""
    statement = month_statement.statement
    return {
        "number": statement.number,
        "month": statement.month,
        "package": month_statement.package,
        "closed": month_statement.closed,
        "opening_balance": statement.opening_balance,
        "payments": statement.payments,
        "rent": statement.rent,
        "call_charges": statement.call_charges,
        "feature_fees": statement.feature_fees,
        "minimum_topup": statement.minimum_topup,
        "number_fees": statement.number_fees,
        "adjustments": statement.adjustments,
        "closing_balance": statement.closing_balance,
        "calls": statement.usage.calls,
        "billable_seconds": statement.usage.billable_seconds,
        "minutes": statement.usage.minutes,
        "unpriced_calls": month_statement.unpriced,
    }


def _span(month_statement: MonthStatement, zone: ZoneInfo) -> dict[str, datetime | str | None]:
    """The part of the month the statement's holding had (all of it, unless the number
    changed hands within it), in local time, and who held it then (None: not recorded)."""
    since, until = month_statement.since, month_statement.until
    return {
        "from": None if since is None else since.astimezone(zone),
        "until": None if until is None else until.astimezone(zone),
        "holder": month_statement.holder,
        "provider": month_statement.provider,
    }


def _as_json(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _json_value(value) for name, value in values.items()}


def _json_value(value: object) -> object:
    """Amounts as text (exact fen), times in ISO-8601 with their offset."""
    if isinstance(value, Decimal):
        return str(value)
    return value.isoformat() if isinstance(value, datetime) else value


def _usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "calls": usage.calls,
        "billable_seconds": usage.billable_seconds,
        "minutes": str(usage.minutes),
        "charges": str(usage.callee_charges),
        "caller_charges": str(usage.caller_charges),
    }


def _pending_json(entry: LedgerEntry, zone: ZoneInfo) -> dict[str, Any]:
    """An entry closing will book, its amount a positive charge as the statement's charges
    are (rent, feature_fees, ...), not signed as the ledger books it."""
    return {
        "kind": entry.kind.value,
        "ref": entry.ref,
        "at": entry.at.astimezone(zone).isoformat(),
        "amount": str(ZERO - entry.amount),
    }


def _to_json(month_statement: MonthStatement, zone: ZoneInfo) -> dict[str, Any]:
    statement = month_statement.statement
    return {
        **_as_json({**_summary(month_statement), **_span(month_statement, zone)}),
        "caller_charges": str(statement.usage.caller_charges),
        "to_be_booked_at_close": [_pending_json(e, zone) for e in month_statement.pending],
        "to_be_booked_elsewhere": [
            {"account": entry.number, **_pending_json(entry, zone)}
            for entry in month_statement.pending_elsewhere
        ],
        "by_day": [
            {"day": day.isoformat(), **_usage_json(usage)}
            for day, usage in statement.by_day.items()
        ],
        "by_province": [
            {"province": province, **_usage_json(usage)}
            for province, usage in statement.by_province.items()
        ],
    }


DEBITS = ("rent", "call_charges", "feature_fees", "minimum_topup", "number_fees")
"""The export columns the ledger books as debits (rating.ledger): negative in the exports."""


def _export_values(month_statement: MonthStatement, zone: ZoneInfo) -> list[object]:
    """The statement's line in the order of EXPORT_COLUMNS, each value of its own type,
    amounts signed as the table shows them and the ledger books them: the opening balance
    plus the amounts from payments to adjustments is the closing balance."""
    line = {
        **_summary(month_statement),
        **_span(month_statement, zone),
        "to_be_booked_at_close": ZERO - _pending_total(month_statement),
    }
    line |= {name: ZERO - line[name] for name in DEBITS}
    return [line[name] for name in EXPORT_COLUMNS]


def _write_csv(statements: Sequence[MonthStatement], zone: ZoneInfo) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for statement in statements:
        writer.writerow([spreadsheet_cell(value) for value in _export_values(statement, zone)])


def _write_xlsx(statements: Sequence[MonthStatement], zone: ZoneInfo, output: Path) -> int:
    times = ("from", "until")
    sheet = ExportSheet(output, EXPORT_COLUMNS, title="statements", zone=zone, times=times)
    return write_workbook(sheet, (_export_values(s, zone) for s in statements), output)
