"""`hotline400 users add|list|disable`: the console's users, kept in the routers' store.

users add NAME --role operator|subscriber-admin|subscriber-staff [--account A] --password-stdin
    The password is read from standard input (one line), never from the command line,
    where other users of the machine could see it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from console.security import WeakPassword, hash_password
from console.store_access import opened_store
from console.users import InvalidUser, Role, check_account, check_new_user
from dialplan.errors import ConfigError
from router.configuration.config_dir import load_config
from router.storage.console_rows import AuditEntry, UserRow
from router.storage.location import NoStore
from router.storage.protocol import Store, StoreUnavailable

CLI_ACTOR = "(command line)"
T = TypeVar("T")


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("users", help="the management console's users")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="add a user")
    add.add_argument("name", help="user name: letters, digits, '.', '_', '@', '-'")
    add.add_argument(
        "--role",
        required=True,
        choices=[role.value for role in Role],
        help="operator: everything; subscriber-admin: its account's numbers and staff;"
        " subscriber-staff: read only",
    )
    add.add_argument("--account", help="the subscriber account a subscriber user works for")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from standard input (required: never on the command line)",
    )
    add.set_defaults(run=_run_add)
    listing = actions.add_parser("list", parents=[common], help="list users")
    listing.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    listing.set_defaults(run=_run_list)
    disable = actions.add_parser("disable", parents=[common], help="disable a user now")
    disable.add_argument("name", help="the user to disable; its sessions end at once")
    disable.set_defaults(run=_run_disable)


def _run_add(args: argparse.Namespace) -> int:
    try:
        role = Role(args.role)
        check_new_user(args.name, role, args.account)
        password = sys.stdin.readline().rstrip("\r\n")
        password_hash = hash_password(password)
    except (InvalidUser, WeakPassword) as error:
        return _fail(str(error))
    row = UserRow(args.name, role.value, args.account, password_hash, False, datetime.now(UTC))

    async def add(store: Store) -> str:
        """Why the user was not added; empty once it is."""
        if args.account is not None:
            configured = load_config(args.config)
            accounts = configured.tariffs.accounts if configured.tariffs is not None else {}
            try:
                await check_account(args.account, {*configured.plans, *accounts}, store)
            except InvalidUser as error:
                return str(error)
        if not await store.add_user(row):
            return f"user {args.name} exists"
        detail = f"{role} {args.account or ''}".strip()
        await store.audit(
            AuditEntry(row.created_at, CLI_ACTOR, args.account, "add user", args.name, detail)
        )
        return ""

    refused = _with_office(args.config, add)
    if refused is None:
        return 1
    if refused:
        return _fail(refused)
    print(f"added {args.name} ({role}{', account ' + args.account if args.account else ''})")
    return 0


def _run_list(args: argparse.Namespace) -> int:
    users = _with_office(args.config, lambda store: store.users())
    if users is None:
        return 1
    if args.format == "json":
        json.dump(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "account": u.account,
                    "disabled": u.disabled,
                    "created_at": u.created_at.isoformat(),
                }
                for u in users
            ],
            sys.stdout,
            indent=2,
        )
        print()
        return 0
    if not users:
        print("no users yet: hotline400 users add NAME --role operator --password-stdin")
        return 0
    print(f"{'name':<24} {'role':<18} {'account':<14} status")
    for u in users:
        print(
            f"{u.name:<24} {u.role:<18} {u.account or '':<14}"
            f" {'disabled' if u.disabled else 'active'}"
        )
    return 0


def _run_disable(args: argparse.Namespace) -> int:
    async def disable(store: Store) -> bool:
        if not await store.disable_user(args.name):
            return False
        await store.audit(
            AuditEntry(datetime.now(UTC), CLI_ACTOR, None, "disable user", args.name, "")
        )
        return True

    done = _with_office(args.config, disable)
    if done is None:
        return 1
    if not done:
        return _fail(f"no user {args.name}")
    print(f"disabled {args.name}; its sessions are closed")
    return 0


def _with_office(config: str, work: Callable[[Store], Awaitable[T]]) -> T | None:
    """Run `work(store)` on the configured store; None (after saying why) if it cannot."""

    async def run() -> T:
        async with opened_store(Path(config)) as store:
            return await work(store)

    if not Path(config).is_dir():
        _fail(f"no configuration directory {config}")
        return None
    try:
        return asyncio.run(run())
    except ConfigError as error:
        _fail(f"cannot read the configuration: {error.summary()}")
    except NoStore as error:
        _fail(f"no store: {error}")
    except StoreUnavailable as error:
        _fail(f"the store cannot be used: {error}")
    return None


def _fail(message: str) -> int:
    print(f"hotline400 users: {message}", file=sys.stderr)
    return 1
