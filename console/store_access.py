"""The store the routers of a config directory use, opened for the console's commands."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from router.configuration.settings import RouterSettings, load_settings
from router.storage.location import ConfiguredStore, build_store, existing_store_url

CONSOLE_ROUTER_NAME = "console"
"""What the console's store names itself: it starts no calls, so no router's calls are its."""


def configured_store(config_dir: Path) -> tuple[RouterSettings, ConfiguredStore]:
    """The routers' store, not yet opened. Like the router's commands, the console refuses
    a SQLite file that does not exist (NoStore): run from the wrong directory, it would
    otherwise start empty books no router writes to."""
    settings = load_settings(config_dir)
    store = build_store(
        existing_store_url(settings),
        zone=ZoneInfo(settings.timezone),
        router=CONSOLE_ROUTER_NAME,
    )
    return settings, store


@asynccontextmanager
async def opened_store(config_dir: Path) -> AsyncIterator[ConfiguredStore]:
    _, store = configured_store(config_dir)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
