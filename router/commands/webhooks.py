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
from pathlib import Path
from typing import Any

import httpx

from dialplan.plan import CrmEvents
from dialplan.plan_loader import load_plans
from router.commands.arguments import service_number
from router.commands.undelivered import add_list_and_drop, drop_kept, list_kept, spool
from router.configuration.settings import load_settings
from router.notifications.crm_address import RefusedAddress, checked_sync_transport
from router.notifications.signing import signed_headers
from router.notifications.undelivered import UNDELIVERED_FILE, UndeliveredEvents
from router.notifications.webhooks import MAX_ANSWER_BYTES, answer_error


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("webhooks", help="call events no CRM accepted")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_list_and_drop(actions, common, "call events", run_list, run_drop)
    replay = actions.add_parser(
        "replay",
        parents=[common],
        help="send the undelivered call events again; exit 1 while any remain",
    )
    replay.add_argument("--number", type=service_number, help="only the events of this 400 number")
    replay.set_defaults(run=run_replay)


def run_list(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else list_kept(args, kept, "event", _describe)


def run_drop(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    return 1 if kept is None else drop_kept(args, kept, "webhooks", "event", _describe)


def _describe(record: dict[str, Any]) -> str:
    return f"{record.get('number')}  attempts {record.get('attempts')}  {record.get('error')}"


def run_replay(args: argparse.Namespace) -> int:
    kept = _undelivered(args)
    if kept is None:
        return 1
    settings = load_settings(args.config)
    plans, _ = load_plans(Path(args.config) / "plans")
    delivered: set[str] = set()
    retried: dict[str, dict[str, Any]] = {}
    try:
        proxy = settings.crm_proxy_url()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    transport = checked_sync_transport(settings.crm_networks(), proxy)
    with (
        kept.replaying(),
        httpx.Client(timeout=settings.webhook_timeout, transport=transport) as client,
    ):
        records = [r for r in kept.read() if args.number is None or r.get("number") == args.number]
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


def _undelivered(args: argparse.Namespace) -> UndeliveredEvents | None:
    return spool(args, "webhooks", UNDELIVERED_FILE)


def _post(client: httpx.Client, record: dict[str, Any], crm: CrmEvents) -> str | None:
    """POST one kept event to the plan's CRM; None when it was accepted, else why not."""
    key = os.environ.get(crm.secret_env)
    if not key:
        return f"environment variable {crm.secret_env} (the key) is not set here"
    body = str(record["body"]).encode()
    headers = signed_headers(key.encode(), int(time.time()), body, record["id"], record["kind"])
    status: int | None = None
    location = ""
    try:
        with client.stream("POST", crm.url, content=body, headers=headers) as response:
            status = response.status_code
            location = response.headers.get("location", "")
            _skim(response)
    except RefusedAddress as refused:
        return f"crm.url: {refused}"
    except (httpx.HTTPError, OSError) as error:  # OSError: the CRM's name did not resolve
        if status is None:
            return f"{type(error).__name__}: {error}"
    if 200 <= status < 300:
        return None
    return answer_error(status, location)


def _skim(response: httpx.Response) -> None:
    """Read and drop a short answer's body, keeping the connection for the next event; of
    a longer one no more than MAX_ANSWER_BYTES (its status is the answer)."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read > MAX_ANSWER_BYTES:
            return
