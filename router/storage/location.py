"""The store a router writes to, built from its `store:` URL (router.storage.store_url),
and the store a command reads and books in: the routers' own."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from zoneinfo import ZoneInfo

import asyncpg

from router.storage.postgres import (
    CALL_PATH_TIMEOUT,
    COMMAND_TIMEOUT,
    PostgresStore,
    default_router_name,
)
from router.storage.protocol import StoreUnavailable
from router.storage.sqlite import SQLiteStore
from router.storage.store_url import (
    STORE_ENV,
    PostgresLocation,
    SQLiteLocation,
    StoreSettings,
    configured_store_url,
    parse_store_url,
    redacted,
)

ConfiguredStore = SQLiteStore | PostgresStore


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


_SQLITE_TRANSIENT = ("locked", "busy")
_POSTGRES_CONFIG_ERRORS = (
    asyncpg.InvalidAuthorizationSpecificationError,  # unknown role, wrong password, pg_hba
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.ClientConfigurationError,  # a URL parameter asyncpg refuses (sslmode=requir)
    asyncpg.UndefinedObjectError,  # a parameter the server does not know (search_pth=)
    asyncpg.InvalidParameterValueError,  # a setting's value refused (statement_timeout=soon)
    asyncpg.InvalidSchemaNameError,  # search_path names no schema that exists
)


def store_is_transient(error: BaseException) -> bool:
    """Whether a store that failed to open at start may come back without an admin.

    A StoreUnavailable without a driver error behind it is the store refusing a schema newer
    than this router: documented to spool until the router is upgraded, as in a rolling
    upgrade. Bad paths, bad credentials, missing databases or schemas and URL parameters
    the driver or the server refuses wait for an admin.
    """
    if not isinstance(error, StoreUnavailable):
        return False
    cause = error.__cause__
    if isinstance(cause, sqlite3.Error):
        return any(word in str(cause).lower() for word in _SQLITE_TRANSIENT)
    return not isinstance(cause, _POSTGRES_CONFIG_ERRORS)
