"""What `hotline400 webhooks`, `hotline400 sms` and `hotline400 low-balance` share: the spool
of records the router could not deliver (router.notifications.undelivered), listed, and
dropped when an operator lets them go. The replay of those that may have been sent already
(text messages, low-balance warnings) is shared too: it passes over them unless told
`--maybe-sent`; `webhooks` has its own replay (its events are signed, each to its plan's CRM).

Each record is kept under the account it is about, a 400 number or, for a service provider's
low-balance warning, `provider:NAME`: `--number` selects a number's, `--provider` (only where
`by_provider` offers it: the low-balance warnings) a provider's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dialplan.errors import ConfigError
from router.commands.arguments import provider_name, service_number
from router.configuration.settings import load_settings
from router.money.provider_accounts import provider_account
from router.notifications.delivery import DeliveryFailed
from router.notifications.undelivered import UndeliveredEvents

MAYBE_SENT = "may have been sent"
Describe = Callable[[dict[str, Any]], str]
"""A kept record's line in `list` and `drop`, after its time and id."""
Send = Callable[[dict[str, Any]], Awaitable[None]]
"""Sends a kept record again, or raises DeliveryFailed."""


def add_list_and_drop(
    actions: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    what: str,
    run_list: Callable[[argparse.Namespace], int],
    run_drop: Callable[[argparse.Namespace], int],
    *,
    by_provider: bool = False,
) -> None:
    """`list` and `drop`; with `by_provider`, both take `--provider NAME` too."""
    listing = actions.add_parser(
        "list", parents=[common], help=f"show the undelivered {what}, oldest first"
    )
    if by_provider:
        listing.add_argument(
            "--provider", type=provider_name, metavar="NAME", help="only this service provider's"
        )
    listing.set_defaults(run=run_list, number=None, provider=None)
    drop = actions.add_parser(
        "drop",
        parents=[common],
        help=f"remove undelivered {what} never to be sent (shown first; --yes removes)",
    )
    chosen = drop.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", nargs="+", metavar="ID", help="these (as `list` shows)")
    chosen.add_argument("--number", type=service_number, help="every one of this 400 number")
    if by_provider:
        chosen.add_argument(
            "--provider",
            type=provider_name,
            metavar="NAME",
            help="every one about this service provider",
        )
    drop.add_argument("--yes", action="store_true", help="remove them, rather than show them")
    drop.set_defaults(run=run_drop, provider=None)


def add_replay(
    actions: argparse._SubParsersAction,
    common: argparse.ArgumentParser,
    what: str,
    receiver: str,
    run: Callable[[argparse.Namespace], int],
    *,
    by_provider: bool = False,
) -> None:
    """`replay`; with `by_provider`, it takes `--provider NAME` too."""
    replay = actions.add_parser(
        "replay",
        parents=[common],
        help=f"send the undelivered {what} again; exit 1 while any remain",
    )
    chosen = replay.add_mutually_exclusive_group()
    chosen.add_argument(
        "--number", type=service_number, help=f"only the {what} about this 400 number"
    )
    if by_provider:
        chosen.add_argument(
            "--provider",
            type=provider_name,
            metavar="NAME",
            help=f"only the {what} about this service provider",
        )
    replay.add_argument(
        "--maybe-sent",
        action="store_true",
        help=f"send those that {MAYBE_SENT} too (check {receiver} records first)",
    )
    replay.set_defaults(run=run, provider=None)


def replay_kept(
    args: argparse.Namespace,
    kept: UndeliveredEvents,
    sender: Callable[[], AbstractAsyncContextManager[Send]],
) -> int:
    """Send the kept records again one after the other (those that may have been sent only
    when told `--maybe-sent`); those sent leave the file, the others stay with their latest
    error, an interrupted replay included. 1 while any remain."""
    sent: set[str] = set()
    retried: dict[str, dict[str, Any]] = {}
    with kept.replaying():
        records = [record for record in kept.read() if _selected(args, record)]
        passed_over = [r for r in records if r.get("maybe_sent") and not args.maybe_sent]
        to_send = [r for r in records if r not in passed_over]
        try:
            asyncio.run(_send_all(sender, to_send, sent, retried))
        finally:  # interrupted too: what the receiver took is never sent again
            kept.settle(sent, retried)
    print(f"sent {len(sent)}, still undelivered {len(retried) + len(passed_over)}")
    for record in retried.values():
        print(f"  {record['id']}: {record['error']}")
    for record in passed_over:
        print(f"  {record['id']}: {MAYBE_SENT}; not sent again without --maybe-sent")
    return 1 if retried or passed_over else 0


async def _send_all(
    sender: Callable[[], AbstractAsyncContextManager[Send]],
    records: list[dict[str, Any]],
    sent: set[str],
    retried: dict[str, dict[str, Any]],
) -> None:
    async with sender() as send:
        for record in records:
            try:
                await send(record)
            except DeliveryFailed as error:
                retried[record["id"]] = {
                    **record,
                    "attempts": int(record.get("attempts", 0)) + 1,
                    "error": str(error),
                    "maybe_sent": bool(record.get("maybe_sent")) or error.maybe_sent,
                }
            else:
                sent.add(record["id"])


def spool(args: argparse.Namespace, command: str, name: str) -> UndeliveredEvents | None:
    """The spool file `name` of the configuration's spool_dir; None, said, when the
    configuration cannot be read."""
    if not Path(args.config).is_dir():
        print(f"{command}: no configuration directory {args.config}", file=sys.stderr)
        return None
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"{command}: {error.summary()}", file=sys.stderr)
        return None
    return UndeliveredEvents(settings.spool_dir, name)


def list_kept(
    args: argparse.Namespace, kept: UndeliveredEvents, noun: str, describe: Describe
) -> int:
    zone = load_settings(args.config).zone()
    records = [record for record in kept.read() if _selected(args, record)]
    width = _id_width(records)
    for record in records:
        when = local(record.get("kept_at"), zone)
        print(f"{when}  {record.get('id')!s:<{width}}  {describe(record)}")
    of = f" of provider {args.provider}" if args.provider else ""
    print(f"{len(records)} undelivered {noun}(s){of} in {kept.path}")
    return 0


def _id_width(records: list[dict[str, Any]]) -> int:
    """The widest id of `records`: the columns after it line up (a call's ids grow with it)."""
    return max((len(str(record.get("id"))) for record in records), default=0)


def drop_kept(
    args: argparse.Namespace, kept: UndeliveredEvents, command: str, noun: str, describe: Describe
) -> int:
    wanted = set(args.id or ())
    with kept.replaying():  # no replay sends them meanwhile
        chosen = [
            record
            for record in kept.read()
            if record.get("id") in wanted or (not wanted and _selected(args, record))
        ]
        unknown = wanted - {record.get("id") for record in chosen}
        if unknown:
            print(f"{command}: no undelivered {noun} {', '.join(sorted(unknown))}", file=sys.stderr)
            return 1
        width = _id_width(chosen)
        for record in chosen:
            print(f"  {record.get('id')!s:<{width}}  {describe(record)}")
        if not args.yes:
            print(f"would drop {len(chosen)} {noun}(s); run again with --yes to drop them")
            return 0
        kept.settle({str(record.get("id")) for record in chosen}, {})
    print(f"dropped {len(chosen)} {noun}(s)")
    return 0


def _selected(args: argparse.Namespace, record: dict[str, Any]) -> bool:
    """Whether `record` is one `--number` or `--provider` chose; every one without either."""
    if args.provider is not None:
        return record.get("number") == provider_account(args.provider)
    return args.number is None or record.get("number") == args.number


def local(kept_at: object, zone: ZoneInfo) -> str:
    """When a record was kept, in the billing zone like every command's times: the router
    writes it in UTC. A value that is no time is shown as it is."""
    try:
        moment = datetime.fromisoformat(str(kept_at))
    except ValueError:
        return str(kept_at or "-")
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"
