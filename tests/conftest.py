"""Fixtures shared by the test modules: the store engines every store-backed test runs on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.configuration.settings import load_settings
from router.storage.location import build_store
from router.storage.protocol import Store
from tests.pg_harness import scratch_schema_for_sync_test

STORE_ENGINES = ["sqlite", "postgresql"]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextmanager
def store_of_engine(engine: str, directory: Path) -> Iterator[str]:
    """The URL of a new store with its schema created: a SQLite file in `directory`, or a
    PostgreSQL scratch schema.

    Commands refuse a SQLite file that does not exist yet (the router creates it), so the
    store is opened once here, as a router's first start would.
    """
    if engine == "sqlite":
        url = f"sqlite:///{directory / 'hotline400.db'}"
        asyncio.run(_create(url))
        yield url
        return
    with scratch_schema_for_sync_test() as url:
        asyncio.run(_create(url))
        yield url


@pytest.fixture(params=STORE_ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new store on each engine in turn, for a test of one function."""
    with store_of_engine(request.param, tmp_path) as url:
        yield url


def store_url_of(config: Path) -> str:
    """The store a test's config directory names in its router.yaml."""
    store = load_settings(config).store
    assert store is not None, f"{config}/router.yaml names no store"
    return store


async def _create(url: str) -> None:
    async with opened_store(url):
        pass


@asynccontextmanager
async def opened_store(url: str) -> AsyncIterator[Store]:
    """The store a URL names, opened for a test's reads and writes, closed afterwards."""
    store = build_store(url, zone=SHANGHAI, router="test-router")
    await store.open()
    try:
        yield store
    finally:
        await store.close()
