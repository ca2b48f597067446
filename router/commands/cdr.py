"""`hotline400 cdr`: the router's call records, filtered, as a table, CSV, JSON or an Excel
workbook (`--format xlsx --output FILE`).

Reads the routers' store (router.yaml's `store` or `database`, or HOTLINE400_STORE), newest
call first. The table is for a
person at a terminal and shows the latest 50 calls unless `--limit` says otherwise; CSV,
JSON and xlsx are exports and carry every matching record unless `--limit` is given, read
from the store and written a page at a time, so a month of millions of calls takes no more
memory than a page (an xlsx goes on to further sheets past Excel's 1,048,576 rows).
Times on the command line are local (router.yaml's timezone) unless they carry an offset.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import textwrap
import unicodedata
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError
from dialplan.regions import place_name
from router.commands.arguments import TIME_FORMS, caller_id, moment, positive, service_number
from router.commands.exits import refuse_usage
from router.commands.spreadsheet import cdr_values, spreadsheet_cell
from router.commands.workbook import ExportSheet, refuse_output, write_workbook_pages
from router.configuration.settings import load_settings
from router.storage.cdr import CDR, TIME_FIELDS, Outcome, cdr_to_json
from router.storage.cdr_pages import PAGE_SIZE, cdr_pages
from router.storage.location import NoStore, store_for_command
from router.storage.protocol import Store, StoreUnavailable
from router.storage.rows import CDR_COLUMNS, STORED_ONLY

TABLE_LIMIT = 50
EXPORT_PAGE = PAGE_SIZE
"""Calls read from the store at a time by an export."""
MAX_LIMIT = 100_000_000
EXPORT_COLUMNS = (*(name for name in CDR_COLUMNS if name not in STORED_ONLY), "legs")
"""The columns of the CSV and xlsx exports: the CDR's as the store has them, its legs
summed up in one."""


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("cdr", parents=[common], help="list or export call records")
    parser.add_argument("--number", type=service_number, help="only calls to this 400 number")
    parser.add_argument(
        "--caller",
        type=caller_id,
        help="only calls from this caller: its number however written, or the caller ID as sent",
    )
    parser.add_argument(
        "--since",
        type=moment,
        metavar="TIME",
        help=f"calls started at or after: {TIME_FORMS}",
    )
    parser.add_argument(
        "--until",
        type=moment,
        metavar="TIME",
        help=f"calls started before: {TIME_FORMS}; a date alone includes that whole day",
    )
    parser.add_argument(
        "--outcome",
        choices=[outcome.value for outcome in Outcome],
        metavar="OUTCOME",
        help=f"only calls that ended so: {', '.join(outcome.value for outcome in Outcome)}",
    )
    parser.add_argument(
        "--format",
        choices=("table", "csv", "json", "xlsx"),
        default="table",
        help="table (for a person, the latest 50 calls), csv, json or xlsx (every call; "
        "xlsx for Excel: numbers stay text, times are date-times, charges numbers)",
    )
    parser.add_argument("--output", metavar="FILE", help="the workbook of --format xlsx")
    parser.add_argument(
        "--limit",
        type=positive(MAX_LIMIT),
        metavar="N",
        help=f"at most N calls, newest first (table: {TABLE_LIMIT}; exports: all)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if refused := refuse_output(args, "cdr"):
        return refused
    if not Path(args.config).is_dir():
        print(f"no configuration directory {args.config}", file=sys.stderr)
        return 1
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"cannot read {args.config}: {error.summary()}", file=sys.stderr)
        return 1
    zone = ZoneInfo(settings.timezone)
    since = _moment(args.since, zone, whole_day=False)
    until = _moment(args.until, zone, whole_day=True)
    if since is not None and until is not None and _backwards(since, until, args.until):
        return refuse_usage("cdr", f"--until {args.until} is before --since {args.since}")
    try:
        url, store = store_for_command(settings)
    except NoStore as error:
        print(f"no call records: {error}", file=sys.stderr)
        return 1
    filters: dict[str, Any] = {
        "number": args.number,
        "caller": args.caller,
        "since": since,
        "until": until,
        "outcome": Outcome(args.outcome) if args.outcome else None,
    }
    try:
        if args.format != "table":
            return asyncio.run(_export(store, args, zone, filters))
        shown = args.limit or TABLE_LIMIT
        # one more than shown tells the table whether older calls were left out
        cdrs = asyncio.run(_read(store, limit=shown + 1, **filters))
    except StoreUnavailable as error:
        print(f"cannot read the store {url}: {error}", file=sys.stderr)
        return 1
    _print_table(cdrs[:shown], zone, more=len(cdrs) > shown)
    return 0


async def _read(store: Store, **filters: Any) -> list[CDR]:
    try:
        await store.open()
        return await store.query_cdrs(**filters)
    finally:
        await store.close()


async def _export(
    store: Store, args: argparse.Namespace, zone: ZoneInfo, filters: dict[str, Any]
) -> int:
    """Every matching call (or --limit of them) read and written a page at a time: a
    month of a busy number is millions of calls, more than memory should hold at once."""
    try:
        await store.open()
        pages = cdr_pages(store, limit=args.limit, page_size=EXPORT_PAGE, **filters)
        if args.format == "xlsx":
            return await _write_xlsx(pages, Path(args.output), zone)
        await (_write_json if args.format == "json" else _write_csv)(pages)
        return 0
    finally:
        await store.close()


def legs_summary(cdr: CDR) -> str:
    """'13800000021 BUSY > 13800000011 ANSWER': every Dial attempt in order."""
    return " > ".join(f"{leg.destination} {leg.dial_status}" for leg in cdr.legs)


def region_label(cdr: CDR) -> str:
    """'山东/济南'; one name when province and city are the same (北京) or one is unknown."""
    return place_name(cdr.region.province, cdr.region.city, separator="/")


def _export_values(cdr: CDR) -> list[object]:
    return cdr_values(cdr, EXPORT_COLUMNS, legs_summary(cdr))


async def _write_csv(pages: AsyncIterator[list[CDR]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    async for page in pages:
        writer.writerows([spreadsheet_cell(value) for value in _export_values(cdr)] for cdr in page)


async def _write_json(pages: AsyncIterator[list[CDR]]) -> None:
    """The array `json.dump(..., indent=2)` writes, one call at a time."""
    opening = "["
    async for page in pages:
        for cdr in page:
            record = json.dumps(cdr_to_json(cdr), ensure_ascii=False, indent=2)
            sys.stdout.write(f"{opening}\n{textwrap.indent(record, '  ')}")
            opening = ","
    sys.stdout.write("[]\n" if opening == "[" else "\n]\n")


async def _write_xlsx(pages: AsyncIterator[list[CDR]], output: Path, zone: ZoneInfo) -> int:
    sheet = ExportSheet(output, EXPORT_COLUMNS, title="calls", zone=zone, times=TIME_FIELDS)
    rows = ([_export_values(cdr) for cdr in page] async for page in pages)
    return await write_workbook_pages(sheet, rows, output)


_TABLE_HEADER = (
    "start",
    "call id",
    "400 number",
    "caller",
    "region",
    "outcome",
    "rule",
    "billable s",
    "legs",
)
_RIGHT_ALIGNED = frozenset({"billable s"})


def _print_table(cdrs: Sequence[CDR], zone: ZoneInfo, *, more: bool) -> None:
    if not cdrs:
        print("no calls match")
        return
    rows = [
        (
            f"{cdr.started_at.astimezone(zone):%Y-%m-%d %H:%M:%S}",
            cdr.call_id,
            cdr.number,
            cdr.caller or cdr.caller_raw or "-",
            region_label(cdr) or "-",
            cdr.outcome.value,
            cdr.rule or "-",
            str(cdr.billable_seconds),
            legs_summary(cdr) or "-",
        )
        for cdr in cdrs
    ]
    widths = [max(_width(row[i]) for row in [_TABLE_HEADER, *rows]) for i in range(len(rows[0]))]
    for row in [_TABLE_HEADER, *rows]:
        cells = [
            _pad(cell, width, right=name in _RIGHT_ALIGNED)
            for name, cell, width in zip(_TABLE_HEADER, row, widths, strict=True)
        ]
        print("  ".join(cells).rstrip())
    shown = f"{len(cdrs)} call(s), newest first"
    print(f"{shown}; older calls match too (--limit N shows more)" if more else shown)


def _width(text: str) -> int:
    """Columns a terminal gives `text`: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, right: bool) -> str:
    fill = " " * (width - _width(text))
    return fill + text if right else text + fill


def _backwards(since: datetime, until: datetime, until_given: date | datetime) -> bool:
    """Whether --until comes before --since: a day named alone ends where the next begins,
    so a day before the one --since names ends just as --since starts."""
    whole_day = not isinstance(until_given, datetime)
    return until < since or (whole_day and until == since)


def _moment(value: date | datetime | None, zone: ZoneInfo, *, whole_day: bool) -> datetime | None:
    """The instant a --since / --until value names; a date is its local midnight, or the
    next one when the whole day is meant."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    day = value + timedelta(days=1) if whole_day else value
    return datetime(day.year, day.month, day.day, tzinfo=zone)
