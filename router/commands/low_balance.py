"""`hotline400 low-balance list|replay|drop`: the low-balance warnings router.yaml's
`low_balance_webhook` did not take, sending them again, and letting go of those its
receiver should not get any more.

The router, a command and the console try a warning again for
`low_balance_webhook_retry_for` seconds (a command or the console no longer than one POST
may take, as it ends), then keep it in `spool_dir/low_balance.undelivered`. `replay` POSTs
each again, its body as it was, to the `low_balance_webhook` router.yaml names now (a URL
fixed since is used); sent warnings leave the file, the others stay with their latest error,
an interrupted replay included. Exit status 1 while any remain.

A warning whose request reached the receiver without an answer in time may have been taken:
it is kept marked "may have been sent", and `replay` passes over it unless given
`--maybe-sent`, after the receiver's own records showed it was not; `drop` lets it go
otherwise.

A service provider's warning is kept under its account, `provider:NAME`: `list` names it
"provider NAME", and `--provider NAME` selects that provider's warnings as `--number`
selects a number's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from router.commands.undelivered import (
    MAYBE_SENT,
    Send,
    add_list_and_drop,
    add_replay,
    drop_kept,
    list_kept,
    replay_kept,
    spool,
)
from router.configuration.settings import load_settings
from router.money.provider_accounts import provider_of
from router.notifications.low_balance import (
    LOW_BALANCE_UNDELIVERED_FILE,
    TIMEOUT_S,
    post_warning,
)
from router.notifications.undelivered import UndeliveredEvents

COMMAND = "low-balance"


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        COMMAND, help="low-balance warnings router.yaml's low_balance_webhook did not take"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    what = "low-balance warnings"
    add_list_and_drop(actions, common, what, run_list, run_drop, by_provider=True)
    add_replay(actions, common, what, "the receiver's", run_replay, by_provider=True)


def run_list(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else list_kept(args, kept, "warning", _describe)


def run_drop(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else drop_kept(args, kept, COMMAND, "warning", _describe)


def run_replay(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    settings = load_settings(args.config)
    url = settings.low_balance_webhook
    if url is None:
        print(f"{COMMAND}: router.yaml names no low_balance_webhook to send to", file=sys.stderr)
        return 1
    secret_env = settings.low_balance_webhook_secret_env
    return replay_kept(args, kept, lambda: _webhook(url, secret_env))


@asynccontextmanager
async def _webhook(url: str, secret_env: str | None) -> AsyncIterator[Send]:
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:

        async def send(record: dict[str, Any]) -> None:
            """The warning as first sent, under its own event id (one kept before warnings
            had ids goes under its spool id), signed anew."""
            body = record["body"]
            event_id = body.get("event_id", record["id"])
            await post_warning(client, url, body, secret_env, event_id)

        yield send


def _describe(record: dict[str, Any]) -> str:
    body = record.get("body") or {}
    doubt = f" ({MAYBE_SENT})" if record.get("maybe_sent") else ""
    account = str(record.get("number"))
    provider = provider_of(account)
    whose = account if provider is None else f"provider {provider}"
    return (
        f"{whose}  balance {body.get('balance')} below {body.get('threshold')}  "
        f"attempts {record.get('attempts')}  {record.get('error')}{doubt}"
    )


def _undelivered(args: argparse.Namespace) -> UndeliveredEvents | None:
    return spool(args, COMMAND, LOW_BALANCE_UNDELIVERED_FILE)
