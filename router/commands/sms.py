"""`hotline400 sms list|replay|drop`: the text messages the SMS gateway did not take, sending
them again, and letting go of those no one should get any more.

The router tries a message again for `sms_retry_for` seconds, then keeps it in
`spool_dir/sms.undelivered` (so it does with one refused for good, one over its sends under
way, one still waiting at shutdown). `replay` sends each again through router.yaml's
`sms_gateway`; sent messages leave the file, the others stay with their latest error, an
interrupted replay included. Exit status 1 while any remain.

A message whose request reached the gateway without an answer in time may have been sent:
it is kept marked "may have been sent", and `replay` passes over it unless given
`--maybe-sent`, after the gateway's own records showed it was not; `drop` lets it go
otherwise. The per-mobile limit of the router (sms_per_number) does not apply to replays:
the operator chooses what to send.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
from router.configuration.settings import RouterSettings, load_settings
from router.notifications.sms import SMS_UNDELIVERED_FILE, HttpSmsGateway
from router.notifications.undelivered import UndeliveredEvents


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("sms", help="text messages the SMS gateway did not take")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_list_and_drop(actions, common, "text messages", run_list, run_drop)
    add_replay(actions, common, "text messages", "the gateway's", run_replay)


def run_list(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else list_kept(args, kept, "message", _describe)


def run_drop(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else drop_kept(args, kept, "sms", "message", _describe)


def run_replay(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    settings = load_settings(args.config)
    if settings.sms_gateway is None:
        print("sms: router.yaml names no sms_gateway to send through", file=sys.stderr)
        return 1
    return replay_kept(args, kept, lambda: _gateway(settings))


@asynccontextmanager
async def _gateway(settings: RouterSettings) -> AsyncIterator[Send]:
    assert settings.sms_gateway is not None
    gateway = HttpSmsGateway(settings.sms_gateway, settings.sms_token_env, settings.sms_timeout)

    async def send(record: dict[str, Any]) -> None:
        await gateway.send(str(record["to"]), str(record["text"]))

    try:
        yield send
    finally:
        await gateway.close()


def _describe(record: dict[str, Any]) -> str:
    doubt = f" ({MAYBE_SENT})" if record.get("maybe_sent") else ""
    return (
        f"{record.get('number')}  {record.get('kind')} to {record.get('to')}  "
        f"attempts {record.get('attempts')}  {record.get('error')}{doubt}"
    )


def _undelivered(args: argparse.Namespace) -> UndeliveredEvents | None:
    return spool(args, "sms", SMS_UNDELIVERED_FILE)
