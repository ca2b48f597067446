"""Which store a router writes to: `store:` URLs, the HOTLINE400_STORE override, the store.

    sqlite:///var/hotline400.db          a SQLite file, relative to the current directory
    sqlite:////srv/hotline400/cdr.db     an absolute path (four slashes)
    postgresql://hotline400@db1/hotline400?sslmode=require
                                         PostgreSQL (postgres:// too); query parameters are
                                         asyncpg's, and unknown ones are server settings,
                                         e.g. search_path=hotline400

Without `store:` the store is the SQLite file named by `database:`. HOTLINE400_STORE, when
set, wins over both: a password then lives in the service's environment, not in router.yaml
(asyncpg also reads PGPASSWORD and ~/.pgpass).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from router.storage.postgres import (
    CALL_PATH_TIMEOUT,
    COMMAND_TIMEOUT,
    PostgresStore,
    default_router_name,
)
from router.storage.sqlite import SQLiteStore


class StoreSettings(Protocol):
    """What choosing the store reads of router.yaml (router.configuration.settings, which
    checks `store` with this module's parse_store_url): a protocol, so neither imports the
    other."""

    store: str | None
    database: str
    router_name: str | None
    timezone: str


STORE_ENV = "HOTLINE400_STORE"
SQLITE_SCHEME = "sqlite"
POSTGRES_SCHEMES = ("postgresql", "postgres")

ConfiguredStore = SQLiteStore | PostgresStore


@dataclass(frozen=True, slots=True)
class SQLiteLocation:
    path: Path


@dataclass(frozen=True, slots=True)
class PostgresLocation:
    dsn: str


StoreLocation = SQLiteLocation | PostgresLocation


def parse_store_url(url: str) -> StoreLocation:
    """Where a `store:` URL points; ValueError says what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme == SQLITE_SCHEME:
        if parts.netloc or not url.startswith("sqlite:///") or parts.query or parts.fragment:
            raise ValueError(
                f"{redacted(url)}: a SQLite store is sqlite:///relative/path or "
                "sqlite:////absolute/path"
            )
        path = url.removeprefix("sqlite:///")
        if not path or path.endswith("/"):
            raise ValueError(f"{url}: names no file")
        return SQLiteLocation(Path(path))
    if parts.scheme in POSTGRES_SCHEMES:
        if not parts.hostname and "host=" not in parts.query:
            raise ValueError(f"{redacted(url)}: names no host")
        return PostgresLocation(url)
    raise ValueError(
        f"{redacted(url)}: a store is sqlite:///PATH or postgresql://USER@HOST/DATABASE"
    )


def configured_store_url(settings: StoreSettings, environ: Mapping[str, str] = os.environ) -> str:
    """HOTLINE400_STORE, else router.yaml's `store`, else its `database` as a SQLite URL."""
    return environ.get(STORE_ENV) or settings.store or f"sqlite:///{settings.database}"


def redacted(url: str) -> str:
    """The URL with its password hidden, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def build_store(
    url: str, *, zone: ZoneInfo, router: str, statement_timeout: float = CALL_PATH_TIMEOUT
) -> ConfiguredStore:
    """The store a URL names, not yet opened (opening creates or migrates its schema);
    `statement_timeout` is how long a PostgreSQL statement may take, and a call's uses of
    the store in all; a connect attempt or SQLite's busy wait take no longer, nor longer
    than CALL_PATH_TIMEOUT.

    A SQLite file's directory is made here, so a new `store:` path works at first start.
    """
    match parse_store_url(url):
        case SQLiteLocation(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            busy_ms = int(min(statement_timeout, CALL_PATH_TIMEOUT) * 1000)
            # a file is one router's: its calls name none
            return SQLiteStore(path, zone=zone, busy_timeout_ms=busy_ms)
        case PostgresLocation(dsn):
            return PostgresStore(
                dsn,
                router=router,
                zone=zone,
                connect_timeout=min(statement_timeout, CALL_PATH_TIMEOUT),
                command_timeout=statement_timeout,
            )


class NoStore(Exception):
    """The configured store cannot serve a command; the message says what to fix."""


def store_for_command(
    settings: StoreSettings, environ: Mapping[str, str] = os.environ
) -> tuple[str, ConfiguredStore]:
    """The URL (password hidden) and the store of the routers, for a command to read or book.

    A command goes where the routers write, so `store: postgresql://...` reads the shared
    database. A SQLite file must already exist: a relative path read from the wrong
    directory would otherwise start a second set of books that no router ever sees. A
    PostgreSQL statement may take COMMAND_TIMEOUT here, not the call path's few seconds.
    """
    url = existing_store_url(settings, environ)
    store = store_for(settings, port=0, environ=environ, statement_timeout=COMMAND_TIMEOUT)
    return redacted(url), store


def existing_store_url(settings: StoreSettings, environ: Mapping[str, str] = os.environ) -> str:
    """The configured store's URL, for a command that must find the routers' store: NoStore
    when it names no store, or a SQLite file that does not exist yet."""
    url = configured_store_url(settings, environ)
    try:
        location = parse_store_url(url)
    except ValueError as error:
        raise NoStore(str(error)) from None
    if isinstance(location, SQLiteLocation) and not location.path.is_file():
        named_by = _named_by(settings, environ)
        raise NoStore(
            f"the database {location.path.absolute()} does not exist ({named_by}, relative "
            "to the current directory): run the command where the router runs, or create "
            "it with hotline400 db upgrade"
        )
    return url


def _named_by(settings: StoreSettings, environ: Mapping[str, str]) -> str:
    if environ.get(STORE_ENV):
        return f"{STORE_ENV}={redacted(environ[STORE_ENV])}"
    if settings.store:
        return f"router.yaml store: {redacted(settings.store)}"
    return f"router.yaml database: {settings.database}"


def store_for(
    settings: StoreSettings,
    *,
    port: int,
    environ: Mapping[str, str] = os.environ,
    statement_timeout: float = CALL_PATH_TIMEOUT,
) -> ConfiguredStore:
    """The router's store as configured; `port` names the router when router.yaml does not."""
    return build_store(
        configured_store_url(settings, environ),
        zone=ZoneInfo(settings.timezone),
        router=settings.router_name or default_router_name(port),
        statement_timeout=statement_timeout,
    )
