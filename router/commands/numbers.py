"""`hotline400 numbers`: the operator's inventory of 400 numbers and each number's life.

numbers import FILE                 one number a line, or a range 4006000000-4006009999
numbers search [--segment 4008] [--grade premium] [--pattern 888] [--status available]
numbers show N                      status now (or --at), operator, grade, fee, holder,
                                    history, and what fell due since the store wrote it
numbers reserve N --by PROVIDER [--intent-form]     numbers release N
numbers apply N --account A         numbers submit N     numbers withdraw N
numbers approve N                   numbers reject N --reason R
numbers suspend N   numbers resume N   numbers cancel N
numbers tick                        apply the time-driven transitions due (cron-safe)

Every action first applies what fell due by its instant (`--at`, default now), then the
transition asked for, and writes them only if nobody changed the number meanwhile. A refusal
is one line with the reason and, where it applies, when it becomes possible; exit 1 and
nothing written.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from dialplan.errors import ConfigError
from dialplan.plan_loader import load_plan
from numbering import lifecycle
from numbering.lifecycle import NumberRecord, Refused, Status
from numbering.number_lists import distinct_count, numbers_of, read_number_list
from numbering.real_name import check_licence, mask_id
from numbering.segments import operator_of
from router.commands.arguments import TIME_FORMS, instant, moment, positive, service_number
from router.commands.number_output import (
    RECORD_HEADER,
    change_json,
    history_json,
    iso,
    local,
    print_changes,
    print_json,
    print_table,
    record_json,
    record_row,
)
from router.configuration.config_dir import PLANS_DIR
from router.money.books import Books, BooksUnavailable, load_books
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.numbers.ticking import tick
from router.storage.protocol import StoreUnavailable

MAX_SEARCH = 10_000
OPERATOR = "operator"
"""Who an operator's action names in the history unless --by says."""


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("numbers", help="the inventory of 400 numbers and their life")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    timed = argparse.ArgumentParser(add_help=False)
    timed.add_argument(
        "--at",
        type=moment,
        metavar="TIME",
        help=f"the instant taken as now: {TIME_FORMS}, local unless it has one "
        "(default: now); to try the rules at another instant without waiting",
    )
    formatted = argparse.ArgumentParser(add_help=False)
    formatted.add_argument(
        "--format", choices=("table", "json"), default="table", help="table (default) or json"
    )
    one = argparse.ArgumentParser(add_help=False)
    one.add_argument("number", type=service_number, help="the 400 number")
    by = argparse.ArgumentParser(add_help=False)
    by.add_argument(
        "--by",
        default=OPERATOR,
        metavar="NAME",
        help="who does it, for the history (operator); a service provider or subscriber "
        "acts only on its own number, and the review is the operator's",
    )
    parents = [common, timed, formatted]

    imported = actions.add_parser("import", parents=parents, help="add numbers to the pool")
    imported.add_argument("file", help="one number a line, or a range 4006000000-4006009999")
    imported.set_defaults(run=inventory_command(_import))

    search = actions.add_parser("search", parents=[common, formatted], help="find numbers")
    search.add_argument("--segment", type=_segment, help="4 digits, e.g. 4008")
    search.add_argument(
        "--grade", type=_grade, help="premium (any grade), ordinary, or a grade's name"
    )
    search.add_argument("--pattern", type=_pattern, help="digits the number contains, e.g. 888")
    search.add_argument(
        "--status", choices=[status.value for status in Status], help="e.g. available"
    )
    search.add_argument("--holder", help="numbers a service provider or subscriber holds")
    search.add_argument(
        "--limit", type=positive(MAX_SEARCH), default=50, metavar="N", help="at most N (50)"
    )
    search.set_defaults(run=inventory_command(_search))

    show = actions.add_parser(
        "show", parents=[*parents, one], help="one number, as it is now (or --at)"
    )
    show.set_defaults(run=inventory_command(_show))

    reserve = actions.add_parser("reserve", parents=[*parents, one], help="hold for a provider")
    reserve.add_argument("--by", required=True, metavar="PROVIDER", help="the service provider")
    reserve.add_argument(
        "--intent-form",
        action="store_true",
        help="the customer signed an intent form: a premium number is then held "
        "long_reservation_days rather than reservation_days (numbers.yaml; 30 and 3 by "
        "default; 4008 numbers are held the long period either way); the history notes it",
    )
    reserve.set_defaults(run=inventory_command(_reserve))

    release = actions.add_parser("release", parents=[*parents, one, by], help="end a reservation")
    release.set_defaults(run=_transition("release"))

    apply = actions.add_parser(
        "apply", parents=[*parents, one], help="a subscriber signs and prepays: number locked"
    )
    apply.add_argument("--account", required=True, type=_name, help="the subscriber (made if new)")
    apply.add_argument("--full-name", help="a new subscriber's company name")
    _material_arguments(
        apply,
        "business licence number: with --legal-rep and --id-number, the material is "
        "submitted for review at once",
    )
    apply.set_defaults(run=inventory_command(_apply))

    submit = actions.add_parser(
        "submit", parents=[*parents, one], help="submit the real-name material for review"
    )
    _material_arguments(
        submit,
        "business licence number, with --legal-rep and --id-number: the material of a "
        "subscriber that applied without it, or new material after a rejected review",
    )
    submit.set_defaults(run=inventory_command(_submit))

    withdraw = actions.add_parser(
        "withdraw",
        parents=[*parents, one, by],
        help="the applicant gives up before the review decides: fees given back",
    )
    withdraw.set_defaults(run=inventory_command(_withdraw))
    approve = actions.add_parser("approve", parents=[*parents, one, by], help="review passed")
    approve.set_defaults(run=_transition("approve"))
    reject = actions.add_parser("reject", parents=[*parents, one, by], help="review failed")
    reject.add_argument("--reason", required=True, help="why, for the applicant")
    reject.set_defaults(run=_transition("reject"))
    suspend = actions.add_parser(
        "suspend", parents=[*parents, one, by], help="suspend with the number kept"
    )
    suspend.set_defaults(run=_transition("suspend"))
    resume = actions.add_parser("resume", parents=[*parents, one, by], help="end a suspension")
    resume.set_defaults(run=_transition("resume"))
    cancel = actions.add_parser(
        "cancel",
        parents=[*parents, one, by],
        help="request cancellation (numbers.yaml's notice, 30 days by default)",
    )
    cancel.set_defaults(run=_transition("cancel"))
    ticked = actions.add_parser(
        "tick",
        parents=[common, timed, formatted],
        help="apply the transitions due (safe to repeat)",
    )
    ticked.set_defaults(run=inventory_command(_tick))


# --- argument types --------------------------------------------------------------------


def _material_arguments(parser: argparse.ArgumentParser, licence_help: str) -> None:
    """The subscriber's real-name material: licence, legal representative and ID."""
    parser.add_argument("--licence", type=licence_number, help=licence_help)
    parser.add_argument("--legal-rep", help="the legal representative's name")
    parser.add_argument(
        "--id-number", type=masked_id_number, help="the legal representative's ID (kept masked)"
    )


def _segment(text: str) -> str:
    if not re.fullmatch(r"400\d", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a segment like 4008")
    return text


def _grade(text: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a grade (premium, ordinary, or a name)")
    return text


def _pattern(text: str) -> str:
    if not re.fullmatch(r"\d{1,10}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a pattern of 1 to 10 digits")
    return text


def _name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a name (letters, digits, '.', '_', '-'; at most 64)"
        )
    return text


def licence_number(text: str) -> str:
    try:
        return check_licence(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def masked_id_number(text: str) -> str:
    """Masked as soon as it is read: the full number goes nowhere."""
    try:
        return mask_id(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --- running ---------------------------------------------------------------------------

Work = Callable[[Books, Inventory, argparse.Namespace, datetime], Awaitable[int]]


def inventory_command(work: Work) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            books = load_books(args.config)
        except BooksUnavailable as error:
            print(error, file=sys.stderr)
            return 1
        at = getattr(args, "at", None)
        # In the billing zone whatever offset --at came with: refusals and history notes
        # read every instant in the zone of `now`.
        now = instant(at, books.zone).astimezone(books.zone) if at else datetime.now(books.zone)
        try:
            return asyncio.run(_in_store(books, args, now, work))
        except Refused as refused:
            print(refused, file=sys.stderr)
        except StoreUnavailable as error:
            print(f"cannot use the store {books.store_url}: {error}", file=sys.stderr)
        return 1

    return run


async def _in_store(books: Books, args: argparse.Namespace, now: datetime, work: Work) -> int:
    async with books.store() as store, books.warnings() as watch:
        inventory = Inventory(store, books.number_rules, books.calendar, watch)
        return await work(books, inventory, args, now)


def _transition(name: str) -> Callable[[argparse.Namespace], int]:
    """A command that is one of the desk's simple transitions, made by --by."""

    async def work(
        books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
    ) -> int:
        reason = getattr(args, "reason", "")
        actor = await desk.actor_named(inventory.store, args.by)
        changes = await desk.act(
            inventory, args.number, name, args.by, now, reason, on_behalf=actor
        )
        _print(args, books, changes)
        return 0

    return inventory_command(work)


def _print(args: argparse.Namespace, books: Books, changes: list[lifecycle.Change]) -> None:
    if args.format == "json":
        print_json([change_json(change, books.zone) for change in changes])
    else:
        print_changes(changes, books.zone)


# --- the actions -----------------------------------------------------------------------


async def _import(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    try:
        with open(args.file, encoding="utf-8-sig") as file:  # a byte order mark is no digit
            ranges, problems = read_number_list(file)
    except (OSError, UnicodeDecodeError) as error:
        raise Refused(f"cannot read {args.file}: {error}") from None
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        first = problems[0]
        raise Refused(f"{args.file}:{first.line}: {first.message}{more}; nothing imported")
    rules = books.number_rules
    fees = rules.fee_of_grade
    records = (
        NumberRecord(number, grade, fees[grade])
        for number in numbers_of(ranges)
        for grade in (rules.grade(number),)
    )
    named = distinct_count(ranges)
    twice = sum(len(span) for span in ranges) - named
    added = await inventory.store.add_numbers(records, now)
    result = {
        "named": named,
        "added": added,
        "already_in_inventory": named - added,
        "duplicates_in_file": twice,
    }
    if args.format == "json":
        print_json(result)
        return 0
    repeated = f"; {twice} duplicate(s) in the file" if twice else ""
    print(
        f"imported {added} number(s) into the pool; {named - added} already in the "
        f"inventory{repeated}"
    )
    return 0


async def _search(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    grade, premium = args.grade, None
    if grade == "premium":
        grade, premium = None, True
    found = await inventory.search(
        now,
        segment=args.segment,
        grade=grade,
        premium=premium,
        pattern=args.pattern,
        status=args.status,
        holder=args.holder,
        limit=args.limit,
    )
    if args.format == "json":
        print_json([record_json(record, books.zone) for record in found])
    elif found:
        print_table(RECORD_HEADER, [record_row(record, books.zone) for record in found])
    else:
        print("no number matches")
    return 0


async def _show(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    """The number as it is at `now`, as calls and the next action find it: what fell due
    since the store last wrote it is applied, and listed as due, not yet written (an
    instant before its last change shows it as written)."""
    stored = await inventory.record(args.number)
    pending = lifecycle.catch_up(stored, now, books.number_rules)
    record = pending[-1].after if pending else stored
    history = await inventory.store.number_history(args.number)
    due = record.due_at(books.number_rules)
    zone = books.zone
    if args.format == "json":
        print_json(
            record_json(record, zone)
            | {
                "due": iso(due, zone),
                "history": [history_json(h, zone) for h in history],
                "fallen_due": [change_json(change, zone) for change in pending],
            }
        )
        return 0
    rows = [
        ("status", record.status.in_words),
        ("operator", f"{operator_of(record.number).value} (segment {record.number[:4]})"),
        ("grade", record.grade + (" (premium)" if record.premium else "")),
        ("selection fee", str(record.selection_fee)),
        ("service provider", record.provider or "-"),
        ("subscriber", record.subscriber or "-"),
        ("since", local(record.since, zone) or "-"),
        ("until", local(record.until, zone) or "-"),
        ("next transition", local(due, zone) or "-"),
    ]
    print(record.number)
    for label, value in rows:
        print(f"  {label:<18}{value}")
    if history:
        print()
        print_table(
            ("at", "by", "from", "to", "why", "fees booked"),
            [
                (local(h.at, zone), h.actor, h.from_status, h.to_status, h.reason, h.fees)
                for h in history
            ],
        )
    if pending:
        print()
        print("fallen due since, written by the next numbers tick or action:")
        print_changes(pending, zone)
    return 0


async def _reserve(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    changes = await desk.reserve(inventory, args.number, args.by, now, intent_form=args.intent_form)
    _print(args, books, changes)
    return 0


async def _apply(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    """Lock the reserved number to the subscriber (made under the reserving provider when it
    is new); with the real-name material, submit it for review at once."""
    changes = await desk.apply(
        inventory,
        args.number,
        args.account,
        now,
        full_name=args.full_name,
        material=_material(args),
    )
    _print(args, books, changes)
    plan = Path(args.config) / PLANS_DIR / f"{args.number}.yaml"
    if plan.exists():  # a past holder's, or written ahead
        note = _plan_note(plan, args.number, args.account)
        if note:
            print(f"note: {note}")
    return 0


def _plan_note(path: Path, number: str, subscriber: str) -> str:
    """What to say of the plan file found as `subscriber` applies for `number`: one naming
    another subscriber routes none of its calls (a past holder's); one naming none routes
    them whoever wrote it; one naming `subscriber` was written ahead for it."""
    try:
        named = load_plan(path).subscriber
    except (ConfigError, OSError):
        named = None
    if named == subscriber:
        return ""
    if named is not None:
        return (
            f"{path} names subscriber {named}: once {number} is in service it routes none "
            f"of its calls (a past holder's plan); write {subscriber}'s plan"
        )
    return (
        f"{path} was there before this application: once {number} is in service its calls "
        f"follow it; make sure it is {subscriber}'s plan (naming `subscriber: {subscriber}` "
        "in it keeps a later holder's calls from following it)"
    )


async def _submit(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    changes = await desk.submit(inventory, args.number, now, material=_material(args))
    _print(args, books, changes)
    return 0


async def _withdraw(
    books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime
) -> int:
    actor = await desk.actor_named(inventory.store, args.by)
    changes = await desk.withdraw(inventory, args.number, args.by, now, on_behalf=actor)
    _print(args, books, changes)
    return 0


def _material(args: argparse.Namespace) -> desk.Material | None:
    given = (args.licence, args.legal_rep, args.id_number)
    if any(given) and not all(given):
        raise Refused("real-name material is --licence, --legal-rep and --id-number together")
    return desk.Material(*given) if all(given) else None


async def _tick(books: Books, inventory: Inventory, args: argparse.Namespace, now: datetime) -> int:
    report = await tick(inventory, books.tariffs, now)
    if args.format == "json":
        print_json({"at": iso(now, books.zone), "timed": report.timed, "arrears": report.arrears})
        return 0
    print(
        f"tick at {local(now, books.zone)}: {report.timed} transition(s) due, "
        f"{report.arrears} number(s) into or out of arrears"
    )
    return 0
