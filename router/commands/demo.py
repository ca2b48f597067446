"""`hotline400 demo`: run the router on the example config and show a day of calls.

The example configuration ships inside the package, so the demo works from any directory.
Each run gets a data directory of its own (a new one under the system's temporary
directory unless `--data` names one) holding a copy of the configuration that points at
it, the SQLite file and the spool: a second run never adds to the first one's balances,
and the commands that read records (`cdr`, `bill`, `account`) read the demo's with
`--config DATA/config`.

The demo places its calls one at a time, so it asks its router to hold one call, not a
busy hour's: the open-files limit of a newcomer's shell is no problem for it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import sys
import tempfile
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from console.security import hash_password
from console.users import Role
from dialplan.errors import ConfigError
from router.configuration.config_dir import load_config
from router.configuration.settings import ROUTER_FILE
from router.daemon import Daemon
from router.simulation.demo import DemoClock, balances, describe, play_tour, prepay_accounts
from router.storage.console_rows import UserRow
from router.storage.protocol import Store

EXAMPLE_CONFIG = Path(str(files("router.simulation") / "example_config"))
DATABASE_FILE = "hotline400.db"


class DemoRefused(Exception):
    """The demo cannot run; the message says why in one line."""


DEMO_USER = "demo"


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "demo",
        help="route a varied set of calls through the example plans",
        description="Start the router on a free port and route a day of calls through the "
        "example plans (no Asterisk needed).",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="DIR",
        help="configuration to tour (default: the example configuration shipped with hotline400)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="where the records go (default: a new directory under the temporary directory, "
        "one per run); a directory used before keeps its records",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        config_dir = prepare(args.config or EXAMPLE_CONFIG, args.data)
    except DemoRefused as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    return asyncio.run(_demo(config_dir))


def prepare(source: Path, data: Path | None) -> Path:
    """Check the configuration, then copy it into the data directory, pointed at it."""
    if not source.is_dir():
        raise DemoRefused(f"no configuration directory {source}")
    config = load_config(source)
    if config.problems:
        count = len(config.problems)
        raise DemoRefused(
            f"{config.problems[0]}"
            + (f" (and {count - 1} more)" if count > 1 else "")
            + f"; see hotline400 check --config {source}"
        )
    if not config.plans:
        raise DemoRefused(f"no plans in {source / 'plans'}")
    data = (data or Path(tempfile.mkdtemp(prefix="hotline400-demo-"))).absolute()
    try:
        data.mkdir(parents=True, exist_ok=True)
        target = data / "config"
        shutil.copytree(source, target, dirs_exist_ok=True)
        (target / ROUTER_FILE).write_text(_demo_settings(source, data), encoding="utf-8")
    except OSError as error:
        raise DemoRefused(f"cannot prepare the data directory {data}: {error}") from None
    return target


def _demo_settings(source: Path, data: Path) -> str:
    """router.yaml of the copy: the store and spool in the data directory, no /metrics
    endpoint (it must not clash with a router already serving one), no file watcher."""
    path = source / ROUTER_FILE
    settings: dict[str, Any] = {}
    if path.is_file():
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    settings.pop("store", None)
    settings.update(
        database=str(data / DATABASE_FILE),
        spool_dir=str(data / "spool"),
        metrics_listen=None,
        watch_plans=False,
    )
    header = f"# {path} as `hotline400 demo` runs it, pointed at {data}\n"
    return header + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False)


async def _demo(config_dir: Path) -> int:
    clock = DemoClock()
    try:
        daemon = Daemon(config_dir, listen="127.0.0.1:0", clock=clock, held_calls=1)
    except (ConfigError, ValueError) as error:
        print(f"demo: {error}".replace("\n", " "), file=sys.stderr)
        return 1
    port = await daemon.start()
    data = config_dir.parent
    print(f"hotline400 router on 127.0.0.1:{port} with plans {', '.join(daemon.plans.numbers())}")
    print(f"records go to {data / DATABASE_FILE}\n")
    try:
        for line in await prepay_accounts(daemon, clock()):
            print(line)
        played = await play_tour("127.0.0.1", port, clock)
        money = await balances(daemon)
        login = await demo_login(daemon.store, clock())
    finally:
        await daemon.stop()
    for index, (demo, result) in enumerate(played, start=1):
        print(describe(index, demo, result))
    for line in money:
        print(line)
    failed = [result for _, result in played if result.error]
    print(f"\n{len(played)} calls placed, {len(failed)} failed.")
    print(f"\nThe records are in {data}. Read them with:")
    print(f"  hotline400 cdr --config {config_dir}")
    print(f"  hotline400 bill --config {config_dir} --month 2026-11")
    print("\nOr open the management console on them:")
    print(f"  hotline400 web --config {config_dir} --insecure-cookies")
    print(f"  then http://127.0.0.1:8400/ as {DEMO_USER}, password {login}")
    return 1 if failed else 0


async def demo_login(store: Store, now: datetime) -> str:
    """An operator login for the console on the demo's records, with a fresh password."""
    password = secrets.token_urlsafe(9)
    await store.add_user(
        UserRow(DEMO_USER, Role.OPERATOR.value, None, hash_password(password), False, now)
    )
    return password
