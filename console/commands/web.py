"""`hotline400 web`: the management console over HTTP.

Serves on 127.0.0.1:8400 by default. In production put it behind a TLS-terminating proxy:
its session cookie is marked Secure, so browsers send it over HTTPS only. `--insecure-cookies`
drops that mark for a console reached over plain HTTP on the loopback interface (the demo),
and is refused on any other address. Several console processes behind one address share
HOTLINE400_CONSOLE_SECRET (32 characters or more), the key their forms are signed with.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from console.app import create_app
from console.security import WeakSecret, console_secret
from console.store_access import configured_store
from dialplan.errors import ConfigError
from router.startup import StartupError, refuse_taken_address
from router.storage.location import ConfiguredStore, NoStore
from router.storage.protocol import StoreUnavailable

DEFAULT_LISTEN = "127.0.0.1:8400"


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("web", parents=[common], help="run the management console")
    parser.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}"
    )
    parser.add_argument(
        "--insecure-cookies",
        action="store_true",
        help="send the session cookie over plain HTTP too (loopback use only)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    host, _, port_text = args.listen.rpartition(":")
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return _fail(f"--listen {args.listen!r}: give HOST:PORT, e.g. {DEFAULT_LISTEN}")
    if args.insecure_cookies and not _loopback(host):
        return _fail(
            f"--insecure-cookies on {host}: a session cookie sent over plain HTTP can be read"
            " on the network; listen on 127.0.0.1 or ::1, or serve behind TLS without it"
        )
    config_dir = Path(args.config)
    if not config_dir.is_dir():
        return _fail(f"no configuration directory {config_dir}")
    try:
        secret = console_secret(os.environ)
    except WeakSecret as error:
        return _fail(str(error))
    try:
        _, store = configured_store(config_dir)
        asyncio.run(_try_open(store))  # a clear error now rather than on the first page
    except ConfigError as error:
        return _fail(f"cannot read the configuration: {error.summary()}")
    except NoStore as error:
        return _fail(f"no store: {error}")
    except StoreUnavailable as error:
        return _fail(f"the store cannot be used: {error}")
    app = create_app(
        config_dir,
        store,
        clock=lambda: datetime.now(UTC),
        secure_cookies=not args.insecure_cookies,
        secret=secret,
    )
    try:  # uvicorn would print its own error after our banner, and exit 3
        refuse_taken_address("console", host.strip("[]"), int(port_text))
    except StartupError as error:
        return _fail(str(error))
    print(f"hotline400 console on http://{host}:{port_text}/", flush=True)
    config = uvicorn.Config(app, host=host, port=int(port_text), log_level="warning")
    server = uvicorn.Server(config)
    try:
        server.run()
    except OSError as error:
        return _fail(f"cannot listen on {args.listen}: {error.strerror or error}")
    return 0


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


async def _try_open(store: ConfiguredStore) -> None:
    await store.open()
    await store.close()


def _fail(message: str) -> int:
    print(f"hotline400 web: {message}", file=sys.stderr)
    return 1
