"""Money: a number's balance, payments and fees, its monthly statements and its features.

The statements are those of `hotline400 bill`; the current month's shows what closing it
will book (rent, minimum-consumption top-up) marked as pending. Payments booked here are
ledger entries like those of `account topup` (operator only: the operator takes the money),
in yuan to the fen, each with a receipt reference, so a form posted twice books once (the
page says a receipt is already booked); one that clears a prepaid number's arrears puts it
back in service at once, as the command does (router.numbers.ticking.book_payment). A
subscriber's administrators and the operator switch features on and off
(console.feature_switching); switching on books the feature's fee that day, with the
low-balance warning when it takes a prepaid balance below its threshold
(router.money.booking_alerts). A prepaid account is not given credit: a feature whose fee is
more than the balance of the account that pays it (the provider's for a number a service
provider holds) is refused, the file and the ledger left as they were. A subscriber's users
see the entries and statements of the current holding of the number: a month that ended
before the number last came back to the pool was a previous holder's, and of a month the
number changed hands in they see their own holding's part; the operator sees each
holder's part of it as a statement of its own. Every statement names its holder and the
service provider it holds the number through, when the inventory records one. The money of
a number the inventory keeps without a plan or an account in tariffs.yaml (its balance,
fees and payments; no package, as `account show` says too) is shown alike: to the operator,
and to the users whose account the number is, bounded by its current holding.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from console.config_problems import BrokenFile, tariffs_broken
from console.context import Console
from console.feature_switching import CannotSwitch, fee_entries, switch_feature, switching
from console.security import message_signed, signed_message
from console.views.dashboard import number_money
from console.web import (
    audit,
    back_to,
    checked_form,
    console_of,
    not_found,
    render,
    require_change,
    require_operator,
    scope_of,
    user_of,
    visible_number,
)
from rating.closing import month_span
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import FEN, ZERO
from rating.tariff import Tariffs, feature_name
from router.money.billing import month_statements
from router.money.booking_alerts import book_warning_low_balances
from router.money.fee_payers import on_payer, providers_of
from router.money.provider_accounts import provider_account
from router.numbers import ticking
from router.numbers.inventory import Inventory
from router.numbers.known import is_known_number

KIND_NAMES = {
    LedgerKind.CALL.value: "call",
    LedgerKind.RENT.value: "rent",
    LedgerKind.FEATURE_FEE.value: "feature fee",
    LedgerKind.MINIMUM_TOPUP.value: "minimum-consumption top-up",
    LedgerKind.PAYMENT.value: "payment",
    LedgerKind.ADJUSTMENT.value: "adjustment",
    LedgerKind.OPENING_FEE.value: "opening fee",
    LedgerKind.SELECTION_FEE.value: "selection fee",
    LedgerKind.KEEPING_FEE.value: "keeping fee",
}
"""Each kind of ledger entry as a statement names it, in words rather than its stored key."""
LEDGER_DAYS = 92
STATEMENT_MONTHS = 3
MAX_PAYMENT = Decimal("10000000.00")


@dataclass(frozen=True, slots=True)
class PaymentForm:
    """The payment form as the operator typed it, and why it was refused, field by field:
    a refused form comes back as typed, so nothing has to be typed again."""

    amount: str = ""
    ref: str = ""
    amount_error: str | None = None
    ref_error: str | None = None


BAD_AMOUNT = "The amount must be a positive number of yuan with at most two decimals."


async def money_page(request: Request) -> Response:
    number = await _money_number(request)
    return await _money(request, number, PaymentForm(ref=uuid.uuid4().hex[:12]))


async def _money_number(request: Request) -> str:
    """The number whose money is asked, if the user may open it (else "not found")."""
    number = request.path_params["number"]
    if not await money_visible(request, number):
        raise not_found()
    return number


async def money_visible(request: Request, number: str) -> bool:
    """Whether the user may open `number`'s money page: the operator any number the back
    office knows, a subscriber user the number its account is. That takes in a number the
    inventory keeps with neither plan nor account (taken through `numbers apply` before
    tariffs.yaml gave it one), whose opening and selection fees are owed all the same:
    its users see them as an account's users see its money (console.users.Scope is the
    plans' and tariffs.yaml's numbers only, so it is not asked here)."""
    user, console = user_of(request), console_of(request)
    if not (user.is_operator or number == user.account):
        return False
    return await is_known_number(number, console.all_numbers(), console.store)


async def _money(
    request: Request, number: str, payment: PaymentForm, status: int = 200
) -> Response:
    """The money page, its payment form filled with `payment`."""
    console = console_of(request)
    now = console.now()
    tariffs = console.config.tariffs
    account = tariffs.accounts.get(number) if tariffs is not None else None
    scope = scope_of(request)
    entries = await console.store.ledger(
        number, since=scope.start(now - timedelta(days=LEDGER_DAYS))
    )
    statements = []
    if tariffs is not None and account is not None:
        for month in _last_months(now, STATEMENT_MONTHS):
            if not scope.overlaps(month_span(month, tariffs.zone)[1]):
                continue
            parts = await month_statements(console.store, tariffs, number, month)
            statements += [  # the latest holding's first; a past holder's are the operator's
                (month, part)
                for part in reversed(parts)
                if part.until is None or scope.overlaps(part.until)
            ]
    features = []
    if tariffs is not None and account is not None:
        features = [
            (name, feature_name(name), fee, account.features.get(name))
            for name, fee in sorted(tariffs.features.items())
        ]
    return render(
        request,
        "money.html",
        {
            "number": number,
            "account": account,
            "configured": number in console.numbers_for(user_of(request)),
            "money": await number_money(request, number, now),
            "entries": [e for e in reversed(entries) if e.kind is not LedgerKind.CALL][:100],
            "statements": statements,
            "features": features,
            "kind_names": KIND_NAMES,
            "zone": console.zone,
            "problem": _problem_shown(request, console),
            **_tariffs_state(console),
            "payment": payment,
        },
        status=status,
    )


async def book_payment(request: Request) -> Response:
    number = await _money_number(request)
    user = require_operator(request)
    form = await checked_form(request)
    console = console_of(request)
    typed = PaymentForm(str(form.get("amount", "")), str(form.get("ref", ""))[:64])
    amount = _payment_amount(typed.amount)
    if amount is None:
        return await _money(request, number, replace(typed, amount_error=BAD_AMOUNT), 422)
    ref = typed.ref.strip() or uuid.uuid4().hex
    entry = LedgerEntry(
        number, console.now(), amount, LedgerKind.PAYMENT, ref, f"payment booked by {user.name}"
    )
    async with console.warnings() as watch:  # a payment clearing arrears restores the number
        inventory = Inventory(
            console.store, console.config.number_rules, console.config.calendar, watch
        )
        paid = await ticking.book_payment(inventory, console.config.tariffs, entry)
    if not paid:  # the receipt's entry exists
        booked = await _payment_booked(console, number, ref)
        when = (
            f" ({booked.amount} yuan on {booked.at.astimezone(console.zone):%Y-%m-%d %H:%M})"
            if booked is not None
            else ""
        )
        problem = (
            f"Receipt {ref} is already booked{when}; this payment of {amount} yuan was not"
            " booked. A new payment needs a receipt reference of its own."
        )
        detail = f"{amount} yuan, ref {ref}: already booked{when}"
        await audit(request, "refused: book payment", number, detail)
        return await _money(request, number, replace(typed, ref_error=problem), 409)
    await audit(request, "book payment", number, f"{amount} yuan, ref {ref}")
    return back_to(f"/numbers/{number}/money")


def _payment_amount(typed: str) -> Decimal | None:
    """The yuan typed, to the fen ("12.300", "1E+2", "0.5" as the ledger books them); None
    for what is no positive amount to the fen within MAX_PAYMENT."""
    try:
        amount = Decimal(typed.strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount > MAX_PAYMENT:
        return None
    return amount.quantize(FEN) if amount == amount.quantize(FEN) else None


def _problem_query(console: Console, problem: str) -> str:
    """The query that has the money page show `problem` after the redirect, signed."""
    return urlencode({"problem": problem, "sig": signed_message(console.secret, problem)})


def _problem_shown(request: Request, console: Console) -> str | None:
    """The problem the query names, when the console signed it; a crafted link shows none."""
    problem, signature = request.query_params.get("problem"), request.query_params.get("sig")
    if problem is None or not message_signed(console.secret, problem, signature):
        return None
    return problem


async def _payment_booked(console: Console, number: str, ref: str) -> LedgerEntry | None:
    """The payment booked on `number` under receipt `ref`, if any."""
    payments = await console.store.ledger(number, kind=LedgerKind.PAYMENT)
    return next((entry for entry in payments if entry.ref == ref), None)


def _tariffs_state(console: Console) -> dict[str, object]:
    """What the page says of a tariffs.yaml that does not load: `tariffs_copy`, the last
    good copy the routers serve (the page shows it), or `tariffs_broken`, the file, when
    none does (the page then shows no package, statement or feature)."""
    broken = tariffs_broken(console.config)
    copy = console.config.copy_of(broken) if broken is not None else None
    return {"tariffs_broken": broken if copy is None else None, "tariffs_copy": copy}


async def switch(request: Request) -> Response:
    """Switch a feature on (booking its fee today) or off, for the number's account; said
    to be impossible, rather than not found, while tariffs.yaml does not load.

    That holds while the routers serve its last good copy too, though the page shows the
    copy's features: a switch rewrites tariffs.yaml, and neither way of writing it is what
    the operator would want. Written into the broken file, the switch would not be served
    (the routers keep the copy) while its fee is booked; written into the copy's text, it
    would put back the copy over the file and throw away the edit in progress, unsaid. The
    file is fixed first, then the feature switched."""
    console = console_of(request)
    number = request.path_params["number"]
    if tariffs_broken(console.config) is not None and await money_visible(request, number):
        require_change(request)
        await checked_form(request)
        raise _cannot_switch(console)
    number = visible_number(request, number)
    require_change(request)
    form = await checked_form(request)
    async with switching(console.config_dir, console.feature_switches):  # balance checked = charged
        return await _switch(request, console, number, form)


async def _switch(request: Request, console: Console, number: str, form: FormData) -> Response:
    if tariffs_broken(console.config) is not None:  # as the file reads now, under the lock
        raise _cannot_switch(console)
    tariffs = console.config.tariffs  # another switch written
    feature = request.path_params["feature"]
    if tariffs is None or number not in tariffs.accounts or feature not in tariffs.features:
        raise not_found()
    on = form.get("on") == "1"
    since = tariffs.accounts[number].features.get(feature)
    back = f"/numbers/{number}/money"
    if on == (since is not None):
        return back_to(back)  # already so: a form posted twice changes nothing
    now = console.now()
    today = now.date()
    action = f"switch feature {'on' if on else 'off'}"
    name = feature_name(feature)
    if on and (short := await _short_of_fee(console, tariffs, number, feature, now)):
        await audit(request, f"refused: {action}", number, f"{name}: {short}")
        return back_to(f"{back}?{_problem_query(console, short)}")
    try:
        switched = switch_feature(
            console.config_dir, tariffs, number, feature, today if on else None
        )
    except CannotSwitch as error:
        await audit(request, f"refused: {action}", number, f"{name}: {error}")
        return back_to(f"{back}?{_problem_query(console, str(error))}")
    if not on:
        await audit(request, "switch feature off", number, f"{name} (on since {since})")
        return back_to(back)
    payers = await providers_of(console.store, [number])  # a provider's number: its provider
    entries = [on_payer(entry, payers) for entry in fee_entries(switched, number, feature, today)]
    async with console.warnings() as watch:
        booked = await book_warning_low_balances(
            watch, console.store, entries, lambda: console.store.post_ledger(entries)
        )
    fee = sum((-entry.amount for entry in entries), Decimal("0.00"))
    what = f"fee {fee} yuan booked" if booked else f"fee {fee} yuan already booked today"
    payer = f" on {entries[0].number}" if entries and entries[0].number != number else ""
    await audit(request, "switch feature on", number, f"{name}: {what}{payer}")
    return back_to(back)


def _cannot_switch(console: Console) -> BrokenFile:
    broken = tariffs_broken(console.config)
    assert broken is not None
    return BrokenFile(broken, "Features cannot be switched")


async def _short_of_fee(
    console: Console, tariffs: Tariffs, number: str, feature: str, now: datetime
) -> str | None:
    """Why a prepaid account cannot pay `feature`'s fee now, or None when it can (or is
    postpaid): the balance of the account the fee would be deducted from."""
    if not tariffs.accounts[number].prepaid:
        return None
    fee = tariffs.features[feature]
    provider = (await providers_of(console.store, [number])).get(number)
    payer = number if provider is None else provider_account(provider)
    usage = await console.store.usage(payer, f"{now:%Y-%m}", f"{now:%Y-%m-%d}")
    balance = usage.balance if usage.balance is not None else ZERO
    if balance >= fee:
        return None
    whose = "the prepaid balance" if payer == number else f"service provider {provider}'s balance"
    return (
        f"{feature_name(feature)} was not switched on: its fee is {fee} yuan and {whose} is"
        f" {balance} yuan."
        f" Top up at least {fee - balance} yuan, then switch it on; nothing was booked."
    )


def _last_months(now: datetime, count: int) -> list[str]:
    months, year, month = [], now.year, now.month
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months
