"""`hotline400 webhooks list|replay|drop`: the call events no CRM accepted, sending them
again, and letting go of those no CRM will ever take (a plan that names no CRM any more, an
event the CRM refuses for good): `drop` shows what it would remove and removes it with
`--yes`.

The router keeps an event it could not deliver (its attempts used, the CRM refusing it,
its queue full, the router stopping) in `spool_dir/webhooks.undelivered`. `replay` POSTs
each again, signed afresh with the key its plan's `crm.secret_env` names in this
command's environment, to the URL the plan names now (a URL fixed since is used);
delivered events leave the file, the others stay with their latest error, an interrupted
replay included. Exit status 1 while any remain. One replay runs at a time (a second waits
for the first), so two at once never send an event twice.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from dialplan.errors import ConfigError
from dialplan.plan import CrmEvents
from dialplan.plan_loader import load_plans
from router.commands.arguments import service_number
from router.configuration.settings import load_settings
from router.notifications.signing import signed_headers
from router.notifications.undelivered import UndeliveredEvents
from router.notifications.webhooks import MAX_ANSWER_BYTES


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("webhooks", help="call events no CRM accepted")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", parents=[common], help="show the undelivered call events, oldest first"
    )
    listing.set_defaults(run=run_list)
    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="send the undelivered call events again; exit 1 while any remain",
    )
    replay.add_argument(
        "--number", type=service_number, help="only the events of this 400 number"
    )
    replay.set_defaults(run=run_replay)
    drop = actions.add_parser(
        "drop",
        parents=[common],
        help="remove undelivered call events no CRM will take (shown first; --yes removes)",
    )
    chosen = drop.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", nargs="+", metavar="ID", help="these events (as `list` shows)")
    chosen.add_argument("--number", type=service_number, help="every event of this 400 number")
    drop.add_argument("--yes", action="store_true", help="remove them, rather than show them")
    drop.set_defaults(run=run_drop)


def run_list(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    zone = load_settings(args.config).zone()
    records = kept.read()
    for record in records:
        print(
            f"{_local(record.get('kept_at'), zone)}  {record.get('id')}  {record.get('number')}  "
            f"attempts {record.get('attempts')}  {record.get('error')}"
        )
    print(f"{len(records)} undelivered event(s) in {kept.path}")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    settings = load_settings(args.config)
    plans, _ = load_plans(Path(args.config) / "plans")
    delivered: set[str] = set()
    retried: dict[str, dict[str, Any]] = {}
    with kept.replaying(), httpx.Client(timeout=settings.webhook_timeout) as client:
        records = [
            r for r in kept.read() if args.number is None or r.get("number") == args.number
        ]
        try:
            for record in records:
                plan = plans.get(str(record.get("number")))
                crm = plan.crm if plan is not None else None
                error = _post(client, record, crm) if crm else "its plan names no crm: any more"
                if error is None:
                    delivered.add(record["id"])
                else:
                    attempts = int(record.get("attempts", 0)) + (crm is not None)
                    retried[record["id"]] = {**record, "attempts": attempts, "error": error}
        finally:  # interrupted too: what a CRM took is never sent again
            kept.settle(delivered, retried)
    print(f"delivered {len(delivered)}, still undelivered {len(retried)}")
    for record in retried.values():
        print(f"  {record['id']}: {record['error']}")
    return 1 if retried else 0


def run_drop(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    wanted = set(args.id or ())
    with kept.replaying():  # no replay sends them meanwhile
        chosen = [
            record
            for record in kept.read()
            if record.get("id") in wanted or (args.number and record.get("number") == args.number)
        ]
        unknown = wanted - {record.get("id") for record in chosen}
        if unknown:
            print(f"webhooks: no undelivered event {', '.join(sorted(unknown))}", file=sys.stderr)
            return 1
        for record in chosen:
            print(f"  {record.get('id')}  {record.get('number')}  {record.get('error')}")
        if not args.yes:
            print(f"would drop {len(chosen)} event(s); run again with --yes to drop them")
            return 0
        kept.settle({str(record.get("id")) for record in chosen}, {})
    print(f"dropped {len(chosen)} event(s)")
    return 0


def _undelivered(args: argparse.Namespace) -> UndeliveredEvents | None:
    if not Path(args.config).is_dir():
        print(f"webhooks: no configuration directory {args.config}", file=sys.stderr)
        return None
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"webhooks: {error.summary()}", file=sys.stderr)
        return None
    return UndeliveredEvents(settings.spool_dir)


def _local(kept_at: object, zone: ZoneInfo) -> str:
    """When an event was kept, in the billing zone like every command's times: the router
    writes it in UTC. A value that is no time is shown as it is."""
    try:
        moment = datetime.fromisoformat(str(kept_at))
    except ValueError:
        return str(kept_at or "-")
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M:%S}"


def _post(client: httpx.Client, record: dict[str, Any], crm: CrmEvents) -> str | None:
    """POST one kept event to the plan's CRM; None when it was accepted, else why not."""
    key = os.environ.get(crm.secret_env)
    if not key:
        return f"environment variable {crm.secret_env} (the key) is not set here"
    body = str(record["body"]).encode()
    headers = signed_headers(key.encode(), int(time.time()), body, record["id"], record["kind"])
    status: int | None = None
    try:
        with client.stream("POST", crm.url, content=body, headers=headers) as response:
            status = response.status_code
            _skim(response)
    except httpx.HTTPError as error:
        if status is None:
            return f"{type(error).__name__}: {error}"
    if 200 <= status < 300:
        return None
    return f"HTTP {status}"


def _skim(response: httpx.Response) -> None:
    """Read and drop a short answer's body, keeping the connection for the next event; of
    a longer one no more than MAX_ANSWER_BYTES (its status is the answer)."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            return
