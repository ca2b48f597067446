"""`hotline400 demo`: run the router on the example config and show a day of calls.

The example configuration ships inside the package, so the demo works from any directory.
Each run gets a data directory of its own (a new one under the system's temporary
directory unless `--data` names one) holding a copy of the configuration that points at
it, the SQLite file and the spool: a second run never adds to the first one's balances,
and the commands that read records (`cdr`, `bill`, `account`) read the demo's with
`--config DATA/config`.

The demo reaches nothing outside itself: its calls are no one's, even on a production
configuration. The copy's router.yaml names no Asterisk manager, SMS gateway or low-balance
webhook, and a store named by HOTLINE400_STORE is refused (the demo would write there, and
the commands it prints would read there). It places its calls one at a time, so it asks its
router to hold one call, not a busy hour's (the open-files limit of a newcomer's shell is
no problem for it). The plans' CRM events go to a CRM the demo runs on loopback
(router.simulation.crm_receiver) instead of the subscribers' CRMs: the copy's crm.url
points there, its router.yaml allows that one address (the router's address checks stay
as they are), and the router signs with the receiver's key instead of one read from the
environment.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shutil
import socket
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
from router.configuration.config_dir import PLANS_DIR, load_config
from router.configuration.settings import ROUTER_FILE
from router.daemon import Daemon
from router.simulation.crm_receiver import CrmReceiver
from router.simulation.demo import DemoClock, balances, describe, play_tour, prepay_accounts
from router.storage.console_rows import UserRow
from router.storage.protocol import Store
from router.storage.store_url import STORE_ENV

EXAMPLE_CONFIG = Path(str(files("router.simulation") / "example_config"))
DATABASE_FILE = "hotline400.db"
NO_DEMO_SETTINGS = ("ami_host", "sms_gateway", "low_balance_webhook")
"""What would tell the world of the demo's calls: an Asterisk's manager, the subscribers'
mobiles, the operator's low-balance receiver."""
CRM_NETWORK = "127.0.0.1/32"
"""Where the demo's CRM listens, allowed to the copy's crm.url."""


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
    with socket.create_server(("127.0.0.1", 0)) as listener:
        crm = CrmReceiver(listener)
        try:
            config_dir, crm_urls = prepare(args.config or EXAMPLE_CONFIG, args.data, crm.url)
        except DemoRefused as error:
            print(f"demo: {error}", file=sys.stderr)
            return 1
        return asyncio.run(_demo(config_dir, crm, crm_urls))


def prepare(source: Path, data: Path | None, crm_url: str) -> tuple[Path, dict[str, str]]:
    """Check the configuration, then copy it into the data directory, pointed at it and
    with its plans' CRM events pointed at `crm_url`; the copy and the plans' own CRM URLs
    (by number)."""
    if not source.is_dir():
        raise DemoRefused(f"no configuration directory {source}")
    if os.environ.get(STORE_ENV):
        raise DemoRefused(
            f"{STORE_ENV} names a store, and the demo keeps its records in a SQLite file of its "
            f"own that commands run with it set would not read; run the demo without it: "
            f"env -u {STORE_ENV} hotline400 demo"
        )
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
        crm_urls = _point_crm_at(target / PLANS_DIR, crm_url)
    except OSError as error:
        raise DemoRefused(f"cannot prepare the data directory {data}: {error}") from None
    return target, crm_urls


def _demo_settings(source: Path, data: Path) -> str:
    """router.yaml of the copy: the store and spool in the data directory, no /metrics
    endpoint (it must not clash with a router already serving one), no file watcher, CRM
    events allowed to the demo's CRM on loopback and sent straight to it (no proxy), and
    nothing of NO_DEMO_SETTINGS."""
    path = source / ROUTER_FILE
    settings: dict[str, Any] = {}
    if path.is_file():
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for reaching_out in ("store", "crm_proxy", *NO_DEMO_SETTINGS):
        settings.pop(reaching_out, None)
    settings.update(
        database=str(data / DATABASE_FILE),
        spool_dir=str(data / "spool"),
        metrics_listen=None,
        watch_plans=False,
        crm_allowed_networks=[*settings.get("crm_allowed_networks", []), CRM_NETWORK],
    )
    header = (
        f"# {path} as `hotline400 demo` runs it, pointed at {data}, without\n"
        f"# {', '.join(NO_DEMO_SETTINGS)};\n"
        f"# {CRM_NETWORK} added to crm_allowed_networks for the CRM the demo runs\n"
    )
    return header + yaml.safe_dump(settings, allow_unicode=True, sort_keys=False)


def _point_crm_at(plans: Path, url: str) -> dict[str, str]:
    """Point each plan's crm.url at `url`, leaving the rest of its file as written (its
    comments too); the URLs the plans named, by number."""
    moved = {}
    for path in sorted(plans.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        node = _crm_url(yaml.compose(text, Loader=yaml.SafeLoader))
        if node is None:
            continue
        moved[path.stem] = node.value
        head = (
            f"# `hotline400 demo` points crm.url at a CRM it runs, in place of {node.value},\n"
            "# and signs the events with that CRM's key, not with one from the environment\n"
        )
        before, after = text[: node.start_mark.index], text[node.end_mark.index :]
        path.write_text(head + before + url + after, encoding="utf-8")
    return moved


def _crm_url(root: yaml.Node | None) -> yaml.ScalarNode | None:
    """The node of a plan's crm.url, if it has one."""
    node = root
    for key in ("crm", "url"):
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((value for name, value in node.value if name.value == key), None)
    return node if isinstance(node, yaml.ScalarNode) else None


async def _demo(config_dir: Path, crm: CrmReceiver, crm_urls: dict[str, str]) -> int:
    clock = DemoClock()
    try:
        daemon = Daemon(config_dir, listen="127.0.0.1:0", clock=clock, held_calls=1)
    except (ConfigError, ValueError) as error:
        print(f"demo: {error}".replace("\n", " "), file=sys.stderr)
        return 1
    daemon.webhooks.secrets = crm.secret
    daemon.webhooks.proxy = None  # HOTLINE400_CRM_PROXY's proxy cannot reach the demo's CRM
    async with crm:
        port = await daemon.start()
        data = config_dir.parent
        numbers = ", ".join(daemon.plans.numbers())
        print(f"hotline400 router on 127.0.0.1:{port} with plans {numbers}")
        for number, url in crm_urls.items():
            print(
                f"CRM events of {number} go to a CRM the demo runs at {crm.url}, in place of {url}"
            )
        print(f"records go to {data / DATABASE_FILE}\n")
        try:
            for line in await prepay_accounts(daemon, clock()):
                print(line)
            played = await play_tour("127.0.0.1", port, clock)
            money = await balances(daemon)
            login = await demo_login(daemon.store, clock())
        finally:
            await daemon.stop()  # every CRM event delivered or kept
    for index, (demo, result) in enumerate(played, start=1):
        print(describe(index, demo, result, crm.taken.get(result.call.uniqueid, [])))
    for line in money:
        print(line)
    failed = [result for _, result in played if result.error]
    print(f"\n{len(played)} calls placed, {len(failed)} failed.")
    undelivered = daemon.webhooks.stats.undelivered
    if crm_urls:
        print(
            f"{crm.events} CRM events delivered, each signature checked; "
            f"{undelivered} not delivered."
        )
    print(f"\nThe records are in {data}. Read them with:")
    print(f"  hotline400 cdr --config {config_dir}")
    print(f"  hotline400 bill --config {config_dir} --month 2026-11")
    print("\nOr open the management console on them:")
    print(f"  hotline400 web --config {config_dir} --insecure-cookies")
    print(f"  then http://127.0.0.1:8400/ as {DEMO_USER}, password {login}")
    return 1 if failed or undelivered else 0


async def demo_login(store: Store, now: datetime) -> str:
    """An operator login for the console on the demo's records, with a fresh password."""
    password = secrets.token_urlsafe(9)
    await store.add_user(
        UserRow(DEMO_USER, Role.OPERATOR.value, None, hash_password(password), False, now)
    )
    return password
