"""Which store a router writes to: `store:` URLs and the HOTLINE400_STORE override.

    sqlite:///var/hotline400.db          a SQLite file, relative to the current directory
    sqlite:////srv/hotline400/cdr.db     an absolute path (four slashes)
    postgresql://hotline400@db1/hotline400?sslmode=require
                                         PostgreSQL (postgres:// too); query parameters are
                                         asyncpg's, and unknown ones are server settings,
                                         e.g. search_path=hotline400

Without `store:` the store is the SQLite file named by `database:`. HOTLINE400_STORE, when
set, wins over both: a password then lives in the service's environment, not in router.yaml
(asyncpg also reads PGPASSWORD and ~/.pgpass).

Read without loading a storage engine (router.storage.location builds the store): router.yaml
is checked with it, so a `serve` refused for a bad file or a taken address answers before
asyncpg and aiosqlite are imported.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit


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
