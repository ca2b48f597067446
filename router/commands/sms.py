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
import asyncio
from typing import Any

from router.commands.arguments import service_number
from router.commands.undelivered import add_list_and_drop, drop_kept, list_kept, spool
from router.configuration.settings import load_settings
from router.notifications.sms import SMS_UNDELIVERED_FILE, HttpSmsGateway, SmsFailed
from router.notifications.undelivered import UndeliveredEvents

MAYBE_SENT = "may have been sent"


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("sms", help="text messages the SMS gateway did not take")
    actions = parser.add_subparsers(dest="action", required=True)
    add_list_and_drop(actions, common, "text messages", run_list, run_drop)
    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="send the undelivered text messages again; exit 1 while any remain",
    )
    replay.add_argument(
        "--number", type=service_number, help="only the messages about this 400 number"
    )
    replay.add_argument(
        "--maybe-sent",
        action="store_true",
        help=f"send those that {MAYBE_SENT} too (check the gateway's records first)",
    )
    replay.set_defaults(run=run_replay)


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
        print("sms: router.yaml names no sms_gateway to send through")
        return 1
    sent: set[str] = set()
    retried: dict[str, dict[str, Any]] = {}
    with kept.replaying():
        records = [
            r for r in kept.read() if args.number is None or r.get("number") == args.number
        ]
        passed_over = [r for r in records if r.get("maybe_sent") and not args.maybe_sent]
        to_send = [r for r in records if r not in passed_over]
        gateway = HttpSmsGateway(settings.sms_gateway, settings.sms_token_env, settings.sms_timeout)
        try:
            asyncio.run(_send_all(gateway, to_send, sent, retried))
        finally:  # interrupted too: what the gateway took is never sent again
            kept.settle(sent, retried)
    print(f"sent {len(sent)}, still undelivered {len(retried) + len(passed_over)}")
    for record in retried.values():
        print(f"  {record['id']}: {record['error']}")
    for record in passed_over:
        print(f"  {record['id']}: {MAYBE_SENT}; not sent again without --maybe-sent")
    return 1 if retried or passed_over else 0


async def _send_all(
    gateway: HttpSmsGateway,
    records: list[dict[str, Any]],
    sent: set[str],
    retried: dict[str, dict[str, Any]],
) -> None:
    """Send kept messages one after the other, noting each as sent or tried again."""
    try:
        for record in records:
            try:
                await gateway.send(str(record["to"]), str(record["text"]))
            except SmsFailed as error:
                retried[record["id"]] = {
                    **record,
                    "attempts": int(record.get("attempts", 0)) + 1,
                    "error": str(error),
                    "maybe_sent": bool(record.get("maybe_sent")) or error.maybe_sent,
                }
            else:
                sent.add(record["id"])
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
