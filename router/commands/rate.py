"""`hotline400 rate --from D --to D [--rerate] [--number N]`: price the answered calls
started in those days (local, both included) with the tariffs in force.

Without --rerate only calls without a price are priced: the router prices every answered
call of a number that has an account, and this catches the ones it could not. With
--rerate, priced calls are priced again; where the price changed the CDR takes the new one
and the difference in the subscriber's share is booked as an adjustment (router.money.rerating
says how included minutes are kept, why running it twice changes nothing, and why the calls
of a closed month wait until it is reopened).

Progress goes to stderr on a terminal; every price set or changed, and a summary, to stdout:
one table, the prices set first, then those changed, its rows kept in temporary files until
the run ends (router.commands.spooled_table), so a month of a million calls priced does not
hold a million rows.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TextIO

from router.commands.arguments import day, service_number
from router.commands.exits import refuse_usage
from router.commands.spooled_table import SpooledTable, spooled_table
from router.money.books import Books, BooksUnavailable, load_books
from router.money.rerating import Change, RatingRun, rate_cdrs
from router.storage.protocol import StoreUnavailable


class ProgressBar:
    """'[##########          ] 512/1024' redrawn in place on a stream (stderr), when the
    stream is a terminal: in a log file or a pipe the redraws would be noise."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.shown = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not total or not self.shown:
            return
        filled = self.width * done // total
        bar = "#" * filled + " " * (self.width - filled)
        end = "\n" if done >= total else ""
        self.stream.write(f"\r[{bar}] {done}/{total}{end}")
        self.stream.flush()


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "rate", parents=[common], help="price stored calls; --rerate after a tariff change"
    )
    parser.add_argument(
        "--from",
        dest="first",
        required=True,
        type=day,
        metavar="YYYY-MM-DD",
        help="first day of calls to price (by start, local time)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        required=True,
        type=day,
        metavar="YYYY-MM-DD",
        help="last day of calls to price, included",
    )
    parser.add_argument(
        "--rerate",
        action="store_true",
        help="price already priced calls again; book the differences as adjustments",
    )
    parser.add_argument("--number", type=service_number, help="only calls to this 400 number")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.last < args.first:
        return refuse_usage("rate", f"--to {args.last} is before --from {args.first}")
    try:
        books = load_books(args.config)
        if args.number is not None:
            books.account(args.number)
    except BooksUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    with spooled_table(_HEADER, groups=2) as table:
        try:
            result = asyncio.run(_rate(books, args, partial(_spool, table)))
        except StoreUnavailable as error:
            print(f"cannot use the store {books.store_url}: {error}", file=sys.stderr)
            return 1
        table.write(sys.stdout)
    print(_summary(result))
    return 0


async def _rate(
    books: Books, args: argparse.Namespace, changed: Callable[[Change], None]
) -> RatingRun:
    zone = books.zone
    since = datetime(args.first.year, args.first.month, args.first.day, tzinfo=zone)
    last = args.last + timedelta(days=1)
    until = datetime(last.year, last.month, last.day, tzinfo=zone)
    async with books.store() as store, books.warnings() as watch:
        return await rate_cdrs(
            books,
            store,
            since,
            until,
            rerate=args.rerate,
            now=datetime.now(zone),
            watch=watch,
            number=args.number,
            progress=ProgressBar(),
            changed=changed,
        )


_HEADER = ("call id", "400 number", "total", "callee share", "tariff")


def _spool(table: SpooledTable, change: Change) -> None:
    """A change's row, in the first group if the call had no price, else the second."""
    old, new = change.old, change.new
    tariff = new.tariff_id or "-"
    if old is not None and old.tariff_id != new.tariff_id:
        tariff = f"{old.tariff_id or '-'} -> {tariff}"
    row = (
        change.call_id,
        change.number,
        f"{old.total if old else '-'} -> {new.total}",
        f"{old.callee_share if old else '-'} -> {new.callee_share}",
        tariff,
    )
    table.add(row, group=0 if old is None else 1)


def _summary(result: RatingRun) -> str:
    summary = (
        f"priced {result.priced}, re-priced {result.repriced}, "
        f"unchanged {result.unchanged}, skipped {result.skipped.total()}"
    )
    if result.skipped:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in result.skipped.most_common())
        summary += f" ({reasons})"
    if result.repriced:
        summary += f"; adjustments booked: {result.adjustments:+}"
    return summary
