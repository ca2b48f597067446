"""Numbers: the operator's inventory (search by segment, digits, grade, status and holder), a
number's page with its history, and its lifecycle actions.

The actions go through router.numbers.desk, as `hotline400 numbers ...` does: the same rules,
the same refusals (shown on the page, nothing changed), the same history and fees, and the
same low-balance warning when a fee takes a prepaid balance below its threshold. The
operator acts; a subscriber's users see the numbers their subscriber holds (and the number
their account is), and any other number answers "not found". Of the actions, a subscriber's
administrators may only withdraw their subscriber's own application before its review has
decided; staff only read.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.users import User
from console.views.money import KIND_NAMES, money_visible
from console.web import (
    audit,
    back_to,
    checked_form,
    console_of,
    not_found,
    render,
    user_of,
)
from numbering.lifecycle import Change, NumberRecord, Refused, Status, as_of, catch_up
from numbering.real_name import check_licence, mask_id
from numbering.segments import operator_of
from router.money.booking_alerts import READ_ONLY, Watch
from router.numbers import desk
from router.numbers.holdings import current_life
from router.numbers.inventory import Inventory
from router.numbers.plan_check import NEEDS_PLAN
from router.numbers.service import past_holders_plan
from router.storage.number_rows import HistoryEntry

PAGE_SIZE = 100
SEGMENT = re.compile(r"400\d")
PATTERN = re.compile(r"\d{1,10}")
HOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ACTIONS_BY_STATUS: dict[Status, tuple[str, ...]] = {
    Status.AVAILABLE: ("reserve",),
    Status.RESERVED: ("apply", "release"),
    Status.APPLIED: ("submit", "withdraw"),
    Status.UNDER_REVIEW: ("approve", "reject", "withdraw"),
    Status.ACTIVE: ("suspend", "cancel"),
    Status.SUSPENDED: ("resume", "cancel"),
    Status.ARREARS: ("cancel",),
}
"""The forms a number's page offers in each status; the rules still decide on posting."""
ASKING_FORMS = frozenset({"reserve", "apply", "reject"})
"""The actions whose form asks for something besides the button (submit too when it asks
for real-name material)."""
DONE = {
    "reserve": "Reserved",
    "release": "Reservation released",
    "apply": "Applied for: number locked",
    "submit": "Material submitted for review",
    "approve": "Approved: in service",
    "reject": "Review rejected",
    "withdraw": "Application withdrawn: its fees given back",
    "suspend": "Suspended with the number kept",
    "resume": "Resumed",
    "cancel": "Cancellation requested",
}


def _inventory(request: Request, watch: Watch) -> Inventory:
    console = console_of(request)
    config = console.config
    return Inventory(console.store, config.number_rules, config.calendar, watch)


def _may_see(user: User, record: NumberRecord) -> bool:
    return user.is_operator or user.account in (record.number, record.subscriber)


async def search_page(request: Request) -> Response:
    user = user_of(request)
    console = console_of(request)
    query = request.query_params
    wanted = {key: query.get(key, "").strip() for key in ("segment", "pattern", "grade", "status")}
    wanted["holder"] = query.get("holder", "").strip() if user.is_operator else ""
    problems = _problems(wanted, console.config.number_rules.fee_of_grade)
    found: list[NumberRecord] = []
    if not problems:
        grade = wanted["grade"] or None
        found = await _inventory(request, READ_ONLY).search(
            console.now(),
            segment=wanted["segment"] or None,
            grade=None if grade == "premium" else grade,
            premium=True if grade == "premium" else None,
            pattern=wanted["pattern"] or None,
            status=wanted["status"] or None,
            holder=wanted["holder"] or None,
            subscriber=None if user.is_operator else user.account,
            limit=PAGE_SIZE + 1,
        )
    if not user.is_operator and user.account is not None and not problems:
        stored = await console.store.number_record(user.account)  # the account is a number
        own = None if stored is None else as_of(stored, console.now(), console.config.number_rules)
        if own is not None and own not in found and _matches(own, wanted):
            found = sorted([*found, own], key=lambda record: record.number)
    return render(
        request,
        "numbers.html",
        {
            "search": wanted,
            "problems": problems,
            "done": DONE.get(query.get("done", ""), ""),
            "found": found[:PAGE_SIZE],
            "more": len(found) > PAGE_SIZE,
            "statuses": [status.value for status in Status],
            "grades": sorted(console.config.number_rules.fee_of_grade),
            "operator_of": operator_of,
        },
    )


def _problems(wanted: dict[str, str], grades: dict[str, object]) -> list[str]:
    problems = []
    if wanted["segment"] and not SEGMENT.fullmatch(wanted["segment"]):
        problems.append(f"{wanted['segment']} is not a segment like 4008")
    if wanted["pattern"] and not PATTERN.fullmatch(wanted["pattern"]):
        problems.append(f"{wanted['pattern']} is not a pattern of 1 to 10 digits")
    if wanted["grade"] and wanted["grade"] != "premium" and wanted["grade"] not in grades:
        problems.append(f"{wanted['grade']} is not a grade")
    if wanted["status"] and wanted["status"] not in {status.value for status in Status}:
        problems.append(f"{wanted['status']} is not a status")
    if wanted["holder"] and not HOLDER.fullmatch(wanted["holder"]):
        problems.append(f"{wanted['holder']} is not a provider or subscriber name")
    return problems


def _matches(record: NumberRecord, wanted: dict[str, str]) -> bool:
    """The search's conditions asked of one record (a subscriber's own account number)."""
    grade = wanted["grade"]
    return (
        record.number.startswith(wanted["segment"])
        and wanted["pattern"] in record.number
        and (not grade or (record.premium if grade == "premium" else record.grade == grade))
        and wanted["status"] in ("", record.status.value)
    )


async def number_page(request: Request) -> Response:
    record = await _visible_record(request)
    return await _page(request, record, done=DONE.get(request.query_params.get("done", ""), ""))


async def _visible_record(request: Request) -> NumberRecord:
    """The number as it is now, what fell due since the store last wrote it applied (as
    its calls and the next action find it)."""
    number = request.path_params["number"]
    console = console_of(request)
    stored = await console.store.number_record(number)
    if stored is None:
        raise not_found()
    record = as_of(stored, console.now(), console.config.number_rules)
    if not _may_see(user_of(request), record):
        raise not_found()
    return record


_BEFORE_SERVICE = frozenset(
    {Status.AVAILABLE, Status.RESERVED, Status.APPLIED, Status.UNDER_REVIEW, Status.FROZEN}
)
"""A plan loaded for a number in these was written before its next holder's service: once
in service the calls follow it, a past holder's plan included, unless it names its
subscriber (then the page says whether that is the holder: a plan naming another routes
none of the number's calls, router.numbers.service.past_holders_plan)."""


async def _page(
    request: Request,
    record: NumberRecord,
    *,
    done: str = "",
    refused: str = "",
    form: FormData | None = None,
    status: int = 200,
) -> Response:
    console = console_of(request)
    rules = console.config.number_rules
    user = user_of(request)
    operator = user.is_operator
    providers = await console.store.providers() if operator else []
    history = await console.store.number_history(record.number)
    stored = await console.store.number_record(record.number)
    if stored is not None:
        history += [_unwritten(change) for change in catch_up(stored, console.now(), rules)]
    history = [dataclasses.replace(h, fees=_fees_in_words(h.fees)) for h in history]
    plan = console.config.plans.get(record.number)
    material_form = await _material_form(request, record)
    return render(
        request,
        "number.html",
        {
            "record": record,
            "operator": operator_of(record.number).value,
            "due": record.due_at(rules),
            "history": list(reversed(history if operator else current_life(history))),
            "action_rows": _action_rows(
                [a for a in ACTIONS_BY_STATUS.get(record.status, ()) if _may_act(user, record, a)],
                material_form,
            ),
            "providers": providers,
            "short_hold": rules.reservation_hold(record.number, record.grade).days,
            "long_hold": rules.reservation_hold(record.number, record.grade, True).days,
            "cancel_label": _cancel_label(rules.timing.cancellation_notice_days),
            # Its routing and money pages, when the user may open them: a user of the
            # subscriber holding it sees the number here, its account's users its pages;
            # one without plan or account has its money page only.
            "configured": record.number in console.numbers_for(user),
            "money_visible": await money_visible(request, record.number),
            "plan_ahead": record.status in _BEFORE_SERVICE
            and plan is not None
            and (plan.subscriber is None or record.subscriber is None),
            "past_holders_plan": plan is not None
            and past_holders_plan(plan, record.subscriber) is not None,
            "plan_subscriber": plan.subscriber if plan is not None else None,
            "plan_missing": record.status in NEEDS_PLAN
            and record.number not in console.config.plans,
            "material_form": material_form,
            "done": done,
            "refused": refused,
            "form": form or {},
        },
        status=status,
    )


def _unwritten(change: Change) -> HistoryEntry:
    """A transition that fell due but no numbers tick or action has written yet, as the
    history will show it."""
    fees = "; ".join(f"{fee.kind} {fee.amount} to {change.after.number}" for fee in change.fees)
    return HistoryEntry(
        change.after.number,
        change.at,
        change.actor,
        change.before.status.value,
        change.after.status.value,
        f"{change.reason} (fallen due; written at the next numbers tick)",
        fees,
    )


def _fees_in_words(fees: str) -> str:
    """The fees a transition booked as the statements name them ('opening fee 600.00 to
    4006001234'), not by the keys the history stores ('opening_fee ...')."""
    parts = (part.partition(" ") for part in fees.split("; ") if part)
    return "; ".join(f"{KIND_NAMES.get(kind, kind)}{gap}{rest}" for kind, gap, rest in parts)


def _action_rows(actions: list[str], material_form: str | None) -> list[list[str]]:
    """The actions in order: a form asking for something (a provider, a subscriber,
    material, a reason) is a row of its own, and the plain buttons between them share one
    row, spaced as every button row of the console."""
    rows: list[list[str]] = []
    in_plain_row = False
    for action in actions:
        asks = action in ASKING_FORMS or (action == "submit" and material_form is not None)
        if in_plain_row and not asks:
            rows[-1].append(action)
        else:
            rows.append([action])
        in_plain_row = not asks
    return rows


async def _material_form(request: Request, record: NumberRecord) -> str | None:
    """Whether submitting the number for review asks for real-name material: "missing"
    (its subscriber applied without it), "rejected" (its review was just rejected: new
    material may replace the old, or the old is submitted again), else None."""
    if record.status is not Status.APPLIED or record.subscriber is None:
        return None
    found = await console_of(request).store.subscribers(name=record.subscriber)
    if not any(desk.has_material(subscriber) for subscriber in found):
        return "missing"
    if await desk.rejected_last(console_of(request).store, record.number):
        return "rejected"
    return None


async def act(request: Request) -> Response:
    """One lifecycle action posted from a number's page; refused ones change nothing."""
    name = request.path_params["action"]
    user = user_of(request)
    record = await _visible_record(request)
    if not _may_act(user, record, name):
        raise not_found()
    perform = _PERFORMERS.get(name)
    if perform is None:
        raise not_found()
    form = await checked_form(request)
    console = console_of(request)
    number, at = record.number, console.now()  # messages read in the billing zone
    try:
        async with console.warnings() as watch:  # of the fees the action books
            changes = await perform(_inventory(request, watch), number, user, form, at)
    except Refused as refusal:
        await audit(request, f"refused: number {name}", number, str(refusal))
        current = await _visible_record(request)
        return await _page(request, current, refused=str(refusal), form=form, status=409)
    await audit(request, f"number {name}", number, _summary(changes))
    if not _may_see(user, changes[-1].after):  # withdrawn: no longer its subscriber's
        return back_to(f"/numbers?{urlencode({'done': name})}")
    return back_to(f"/numbers/{number}?{urlencode({'done': name})}")


def _may_act(user: User, record: NumberRecord, action: str) -> bool:
    """The operator acts on any number; a subscriber's administrator only withdraws its own
    subscriber's application."""
    if user.is_operator:
        return True
    return action == "withdraw" and user.may_change and record.subscriber == user.account


def _summary(changes: list[Change]) -> str:
    """What the audit log keeps: each transition and its fees, never real-name material."""
    parts = []
    for change in changes:
        fees = "".join(f", {KIND_NAMES[fee.kind]} {fee.amount}" for fee in change.fees)
        parts.append(f"{change.before.status.in_words} -> {change.after.status.in_words}{fees}")
    return "; ".join(parts)


Performer = Callable[[Inventory, str, User, FormData, datetime], Awaitable[list[Change]]]


def _field(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


async def _reserve(
    inventory: Inventory, number: str, user: User, form: FormData, at: datetime
) -> list[Change]:
    provider = _field(form, "provider")
    if not provider:
        raise Refused("choose the service provider the number is reserved for")
    intent_form = _field(form, "intent_form") == "yes"
    return await desk.reserve(inventory, number, provider, at, intent_form=intent_form)


async def _apply(
    inventory: Inventory, number: str, user: User, form: FormData, at: datetime
) -> list[Change]:
    subscriber = _field(form, "subscriber")
    if not HOLDER.fullmatch(subscriber):
        raise Refused(
            f"{subscriber!r} is not a subscriber name (letters, digits, '.', '_', '-'; at most 64)"
        )
    full_name = _field(form, "full_name") or None
    return await desk.apply(
        inventory, number, subscriber, at, full_name=full_name, material=_material(form)
    )


async def _submit(
    inventory: Inventory, number: str, user: User, form: FormData, at: datetime
) -> list[Change]:
    return await desk.submit(inventory, number, at, material=_material(form))


def _material(form: FormData) -> desk.Material | None:
    """The real-name material posted, checked; None when none was given."""
    given = (_field(form, "licence"), _field(form, "legal_rep"), _field(form, "id_number"))
    if not any(given):
        return None
    if not all(given):
        raise Refused("real-name material is the licence, the legal representative and the ID")
    try:
        return desk.Material(check_licence(given[0]), given[1], mask_id(given[2]))
    except ValueError as error:
        raise Refused(str(error)) from None


async def _withdraw(
    inventory: Inventory, number: str, user: User, form: FormData, at: datetime
) -> list[Change]:
    return await desk.withdraw(inventory, number, user.name, at)


def _simple(name: str) -> Performer:
    async def perform(
        inventory: Inventory, number: str, user: User, form: FormData, at: datetime
    ) -> list[Change]:
        return await desk.act(inventory, number, name, user.name, at, _field(form, "reason"))

    return perform


_PERFORMERS: dict[str, Performer] = {
    "reserve": _reserve,
    "apply": _apply,
    "submit": _submit,
    **{name: _simple(name) for name in desk.SIMPLE_ACTIONS},
    "withdraw": _withdraw,
}


def _cancel_label(notice_days: int) -> str:
    """The cancel button names the notice numbers.yaml sets."""
    if notice_days == 0:
        return "Request cancellation (at once)"
    return f"Request cancellation ({notice_days} day{'' if notice_days == 1 else 's'}' notice)"
