"""`hotline400 db upgrade`: create or migrate the configured store's schema, print its version.

The router migrates at start too; running this first (from a deployment step, before the
routers are restarted) makes a migration an explicit step, and says which version the
database is at. The store is router.yaml's `store`, or `database`, unless HOTLINE400_STORE
or --store names another.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from contextlib import closing
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from dialplan.errors import ConfigError
from router.configuration.settings import load_settings
from router.storage.location import build_store
from router.storage.postgres import default_router_name, schema_version
from router.storage.protocol import StoreUnavailable
from router.storage.store_url import (
    PostgresLocation,
    SQLiteLocation,
    StoreLocation,
    configured_store_url,
    parse_store_url,
    redacted,
)


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("db", help="manage the store's schema")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser(
        "upgrade", parents=[common], help="create or migrate the schema and print its version"
    )
    upgrade.add_argument(
        "--store",
        metavar="URL",
        help="this store instead of the configured one: sqlite:///relative/path, "
        "sqlite:////absolute/path (four slashes) or postgresql://USER@HOST/DATABASE",
    )
    upgrade.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not Path(args.config).is_dir():
        print(f"cannot upgrade: no configuration directory {args.config}", file=sys.stderr)
        return 1
    try:
        settings = load_settings(args.config)
        url = args.store or configured_store_url(settings)
        location = parse_store_url(url)
    except ConfigError as error:
        print(f"cannot upgrade: {error.summary()}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"cannot upgrade: {error}", file=sys.stderr)
        return 1
    file = location.path.absolute() if isinstance(location, SQLiteLocation) else None
    print(f"store: {redacted(url)}" + (f" (the file {file})" if file else ""))
    try:
        before, after = asyncio.run(_upgrade(url, location, ZoneInfo(settings.timezone)))
    except StoreUnavailable as error:
        print(f"cannot upgrade: {error}", file=sys.stderr)
        return 1
    change = "already current" if before == after else f"upgraded from {before}"
    print(f"schema version {after} ({change})")
    return 0


async def _upgrade(url: str, location: StoreLocation, zone: ZoneInfo) -> tuple[int, int]:
    """The recorded version before and after opening the store, which migrates it."""
    before = await _recorded_version(location)
    store = build_store(url, zone=zone, router=default_router_name(0))
    await store.open()
    await store.close()
    return before, await _recorded_version(location)


async def _recorded_version(location: StoreLocation) -> int:
    match location:
        case SQLiteLocation(path):
            return await asyncio.to_thread(_sqlite_version, path)
        case PostgresLocation(dsn):
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
            try:
                return await schema_version(conn)
            finally:
                await conn.close()


_SQLITE_HAS_VERSIONS = "SELECT 1 FROM sqlite_master WHERE name = 'schema_version'"


def _sqlite_version(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        with closing(sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)) as db:
            if not db.execute(_SQLITE_HAS_VERSIONS).fetchone():
                return 0
            return db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
    except sqlite3.Error as error:
        raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
