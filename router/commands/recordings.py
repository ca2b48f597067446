"""`hotline400 recordings purge [--dry-run]`: remove the call recordings whose retention is over.

Run it from cron on a host that sees router.yaml's `recordings_dir` as Asterisk writes it.
Each account keeps its recordings its own `recording_retention_days` (tariffs.yaml), else
router.yaml's; a recording younger than that, by its call or by its file, is never removed
(router/recordings/retention.py). Every removal is printed, then a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from router.money.books import Books, BooksUnavailable, load_books
from router.recordings.retention import Purge, purge_recordings
from router.storage.protocol import StoreUnavailable


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("recordings", help="call recordings kept by retention")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    purge = actions.add_parser(
        "purge",
        parents=[common],
        help="remove the recordings whose account's retention is over",
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="say what would be removed; remove nothing"
    )
    purge.set_defaults(run=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    try:
        books = load_books(args.config)
    except BooksUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    try:
        result = asyncio.run(_purge(books, args.dry_run))
    except StoreUnavailable as error:
        print(f"cannot use the store {books.store_url}: {error}", file=sys.stderr)
        return 1
    _print(result, args.dry_run)
    return 0


async def _purge(books: Books, dry_run: bool) -> Purge:
    settings = books.settings
    async with books.store() as store:
        return await purge_recordings(
            store,
            books.tariffs,
            settings.recordings_dir,
            settings.recording_retention_days,
            datetime.now(books.zone),
            dry_run=dry_run,
        )


def _print(result: Purge, dry_run: bool) -> None:
    verb = "would remove" if dry_run else "removed"
    for recorded, size in result.removed:
        started = recorded.started_at.isoformat(timespec="seconds")
        print(
            f"{verb} {recorded.path} ({recorded.number}, call {recorded.call_id} of "
            f"{started}, {size} bytes)"
        )
    for recorded, why in result.kept:
        print(f"kept {recorded.path} ({recorded.number}, call {recorded.call_id}): {why}")
    gone = f", {len(result.gone)} already gone" if result.gone else ""
    done = "to remove" if dry_run else "removed"
    print(
        f"{len(result.removed)} recording(s) {done} ({result.bytes_removed} bytes){gone}, "
        f"{len(result.kept)} past retention kept"
    )
