"""`hotline400 account`: the money of 400 numbers and service providers between statements.

account topup --number N | --provider P --amount 600.00 [--ref RECEIPT] [--at TIME]
    Book a payment, to a 400 number's account or a service provider's. A payment that
    clears a prepaid number's arrears puts it back in service at once. With --number N
    --past-holder S it is S's payment of what it left on N before N came back to the pool:
    booked on that holding (dated at its last instant, the note saying when it was paid),
    never on the current holder's balance. The ref (a receipt
    number; a generated unique id by default) makes it safe to repeat: a ref already booked
    with the same amount books nothing, with another amount it is refused. A number the
    inventory (or a plan) knows without a tariffs.yaml account has its payment booked as the
    console's money page books it, against its opening and selection fees; a number of no
    plan, no account and no inventory record is refused.
account show --provider P
    A service provider's balance, low-balance warning threshold and latest entries.
account show --subscriber S
    What a subscriber left owing (or was owed) on each number it held before the number came
    back to the pool, and the sum: the balances of its past holdings, which no later holder
    of the number pays. Headed with the subscriber and its service provider ("subscriber
    alpha (provider sp-east)").
account show --number N
    Its status, subscriber and service provider (with the provider's balance) in the
    inventory, balance, low-balance warning, package, this month's and today's calls and cost,
    included minutes used and left. The balance and calls are those of the current holding,
    since the number last came back to the pool ('holding since'); each past holding that left
    a balance is listed with its holder, named with its service provider as statements name
    it ("alpha (provider sp-east)"; the holder alone when the subscribers' register names no
    provider), and what it owes (or is owed), which stays on that holding and is never the
    next holder's. Calls and cost are the month's and the day's call
    entries, the figures the router's cost caps are checked against; re-rating
    adjustments show on the month's statement (`bill`).
    A number the inventory (or a plan) knows but tariffs.yaml gives no account, such as one
    taken through `numbers apply` before its account was added, is shown with its holder,
    balance and the latest entries of its current holding (its opening and selection fees),
    its package said to be none: no account in tariffs.yaml, so its calls are not priced
    until one is added. A number of no plan, no account and no inventory record is refused.
account terms [--number N] [--record [--day YYYY-MM-DD]]
    Each number's history of terms as the store keeps it: package, minimum monthly
    consumption and the rate it is charged (per minute), from which day, and whether
    tariffs.yaml now gives other terms. --record adds the file's terms for every number
    whose terms changed (or were never recorded), holding from --day (today by default);
    a change against the rule of rating.minimum is refused, naming the number, the old
    and new figures and the rule, and then nothing is recorded (exit 1).
account fees [--day YYYY-MM-DD]
    Book, for every account, the fees of the features switched on that day (today by
    default); the same day booked twice is booked once. A number a service provider holds
    has its fees deducted from the provider's account, the entry naming the number. A fee
    taking a prepaid balance below its warning threshold raises the low-balance warning
    (router.money.booking_alerts).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from rating.closing import month_span
from rating.ledger import LedgerEntry, LedgerKind, feature_fees_due
from rating.minimum import (
    MinimumChangeRefused,
    RecordedTerms,
    Terms,
    check_terms_change,
    in_use,
    rate_text,
    terms_of,
)
from rating.money import ZERO, to_fen
from rating.rerating import rerated_call_id
from rating.tariff import Tariffs, feature_name
from router.commands.arguments import (
    TIME_FORMS,
    amount,
    day,
    instant,
    moment,
    provider_name,
    service_number,
)
from router.money.billing import named_holder
from router.money.booking_alerts import book_warning_low_balances
from router.money.books import Books, BooksUnavailable, load_books
from router.money.fee_payers import on_payer, providers_of
from router.money.provider_accounts import provider_account
from router.numbers.inventory import Inventory
from router.numbers.known import is_known_number
from router.numbers.ticking import book_payment
from router.storage.protocol import Store, StoreUnavailable
from router.storage.rows import Holding, UsageSnapshot


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("account", help="payments, balance and feature fees")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    topup = actions.add_parser("topup", parents=[common], help="book a payment")
    payee = topup.add_mutually_exclusive_group(required=True)
    payee.add_argument("--number", type=service_number, help="the 400 number")
    payee.add_argument(
        "--provider", type=provider_name, metavar="NAME", help="a service provider's account"
    )
    topup.add_argument(
        "--amount",
        required=True,
        type=amount(MAX_PAYMENT),
        metavar="YUAN",
        help=f"e.g. 600.00: yuan, at most 2 decimals, at most {MAX_PAYMENT:,} at once",
    )
    topup.add_argument(
        "--past-holder",
        metavar="SUBSCRIBER",
        help="with --number: a payment from a subscriber that held the number before it came "
        "back to the pool, settling what it left there (account show --subscriber)",
    )
    topup.add_argument("--ref", help="receipt or transfer id (default: a generated unique id)")
    topup.add_argument(
        "--at",
        type=moment,
        metavar="TIME",
        help=f"when it was paid: {TIME_FORMS}, local unless it has one (default: now)",
    )
    topup.set_defaults(run=_run_topup)

    show = actions.add_parser("show", parents=[common], help="balance, usage, package")
    shown = show.add_mutually_exclusive_group(required=True)
    shown.add_argument(
        "--number", type=service_number, help="the 400 number, with its service provider's balance"
    )
    shown.add_argument(
        "--provider",
        type=provider_name,
        metavar="NAME",
        help="a service provider: balance and latest entries",
    )
    shown.add_argument(
        "--subscriber",
        metavar="NAME",
        help="a subscriber: what it left owing (or owed) on the numbers it no longer holds",
    )
    show.add_argument(
        "--today",
        type=day,
        metavar="YYYY-MM-DD",
        help="the day 'today' and 'this month' mean (default: today)",
    )
    show.set_defaults(run=_run_show)

    terms = actions.add_parser(
        "terms", parents=[common], help="each number's minimum and rate over time"
    )
    terms.add_argument(
        "--number", type=service_number, help="the 400 number (default: every account)"
    )
    terms.add_argument(
        "--record",
        action="store_true",
        help="record tariffs.yaml's terms where they changed, refusing changes against the "
        "minimum-consumption rule",
    )
    terms.add_argument(
        "--day",
        type=day,
        metavar="YYYY-MM-DD",
        help="with --record: the day the terms hold from, and a number is in use if opened "
        "by then (default: today)",
    )
    terms.set_defaults(run=_run_terms)

    fees = actions.add_parser("fees", parents=[common], help="book the day's feature fees")
    fees.add_argument(
        "--day", type=day, metavar="YYYY-MM-DD", help="the day to book (default: today)"
    )
    fees.set_defaults(run=_run_fees)


MAX_PAYMENT = Decimal("1000000.00")
"""A larger payment is taken for a typo: book it in parts if it is real."""

Action = Callable[[Books, argparse.Namespace], Awaitable[int]]


def _run(args: argparse.Namespace, action: Action, *, needs_account: bool = True) -> int:
    """Load the books, run the action on the store, and turn refusals into exit 1. A
    number the action `needs_account` for must have one in tariffs.yaml."""
    try:
        books = load_books(args.config)
        if needs_account and getattr(args, "number", None) is not None:
            books.account(args.number)
    except BooksUnavailable as error:
        print(error, file=sys.stderr)
        return 1
    try:
        return asyncio.run(action(books, args))
    except StoreUnavailable as error:
        print(f"cannot use the store {books.store_url}: {error}", file=sys.stderr)
    return 1


def _run_topup(args: argparse.Namespace) -> int:
    return _run(args, _topup, needs_account=False)


def _run_show(args: argparse.Namespace) -> int:
    return _run(args, _show, needs_account=False)


def _run_fees(args: argparse.Namespace) -> int:
    return _run(args, _fees)


def _run_terms(args: argparse.Namespace) -> int:
    return _run(args, _terms)


# --- topup ---------------------------------------------------------------------------


async def _topup(books: Books, args: argparse.Namespace) -> int:
    if args.past_holder is not None:
        return await _past_holder_pays(books, args)
    amount = args.amount
    number = args.number or provider_account(args.provider)
    ref = args.ref or f"topup-{uuid.uuid4().hex}"
    paid_at = instant(args.at, books.zone) if args.at else datetime.now(books.zone)
    async with books.store() as store, books.warnings() as watch:
        if args.number is not None and await _known_nowhere(books, store, number):
            return 1
        if args.provider is not None and not await store.providers(args.provider):
            print(
                f"no service provider {args.provider} (hotline400 providers list)", file=sys.stderr
            )
            return 1
        earlier = await _payment(store, number, ref)
        if earlier is None:
            entry = LedgerEntry(number, paid_at, amount, LedgerKind.PAYMENT, ref, "top-up")
            if args.number is not None:  # a top-up that clears arrears restores the number
                inventory = Inventory(store, books.number_rules, books.calendar, watch)
                booked = await book_payment(inventory, books.tariffs, entry)
            else:  # through the provider's balance watch, as a number's payment is
                booked = await book_warning_low_balances(
                    watch, store, [entry], lambda: store.post_ledger([entry])
                )
            earlier = None if booked else await _payment(store, number, ref)
        balance = await _balance(store, books, number)
    if earlier is None:
        print(f"booked payment {amount} to {number} (ref {ref}); balance {balance}")
        return 0
    if earlier.amount != amount:
        print(
            f"ref {ref} is already a payment of {earlier.amount} to {number} "
            f"({earlier.at.astimezone(books.zone):%Y-%m-%d %H:%M}); nothing booked",
            file=sys.stderr,
        )
        return 1
    print(f"payment {ref} of {amount} to {number} was booked before; balance {balance}")
    return 0


async def _past_holder_pays(books: Books, args: argparse.Namespace) -> int:
    """A payment from a subscriber that held the number before, booked on its last holding
    of it: dated at that holding's last instant (a ledger entry belongs to the holding its
    instant falls in), the note telling when it was paid. The number's current holder and
    its arrears are not touched."""
    number, holder, amount = args.number, args.past_holder, args.amount
    if number is None:
        print("--past-holder needs --number: the number it held", file=sys.stderr)
        return 1
    ref = args.ref or f"topup-{uuid.uuid4().hex}"
    paid_at = instant(args.at, books.zone) if args.at else datetime.now(books.zone)
    async with books.store() as store:
        if await _known_nowhere(books, store, number):
            return 1
        held = [h for h in await store.holdings_of(holder) if h.number == number]
        if not held:
            print(
                f"{holder} left no holding of {number} (account show --subscriber {holder})",
                file=sys.stderr,
            )
            return 1
        until = held[-1].until
        earlier = await _payment(store, number, ref)
        if earlier is None:
            note = f"paid {_local(paid_at, books)} by {holder} for its holding until "
            at = until - timedelta(microseconds=1)
            entry = LedgerEntry(
                number, at, amount, LedgerKind.PAYMENT, ref, note + _local(until, books)
            )
            earlier = (
                None if await store.post_ledger([entry]) else await _payment(store, number, ref)
            )
        left = next(h for h in await store.holdings_of(holder) if h.until == until).balance
    if earlier is not None and earlier.amount != amount:
        print(
            f"ref {ref} is already a payment of {earlier.amount} to {number}; nothing booked",
            file=sys.stderr,
        )
        return 1
    said = "was booked before" if earlier is not None else "booked"
    print(
        f"payment {amount} from {holder} to its holding of {number} until "
        f"{_local(until, books)} (ref {ref}) {said}; left there {left}"
    )
    return 0


async def _known_nowhere(books: Books, store: Store, number: str) -> bool:
    """Whether `number` has no account in tariffs.yaml, no plan and no inventory record: a
    typo, refused as one (said on stderr). A number the inventory or a plan knows without an
    account, such as one taken through `numbers apply`, owes its fees all the same."""
    if await is_known_number(number, {*books.tariffs.accounts, *books.plans}, store):
        return False
    try:
        books.account(number)
    except BooksUnavailable as error:
        print(error, file=sys.stderr)
    return True


async def _balance(store: Store, books: Books, number: str) -> Decimal:
    today = datetime.now(books.zone).date()
    usage = await store.usage(number, f"{today:%Y-%m}", today.isoformat())
    return usage.balance or ZERO


async def _payment(store: Store, number: str, ref: str) -> LedgerEntry | None:
    payments = await store.ledger(number, kind=LedgerKind.PAYMENT)
    return next((entry for entry in payments if entry.ref == ref), None)


# --- show ----------------------------------------------------------------------------


async def _show(books: Books, args: argparse.Namespace) -> int:
    if args.provider is not None:
        return await _show_provider(books, args.provider)
    if args.subscriber is not None:
        return await _show_subscriber(books, args.subscriber)
    number = args.number
    today = args.today or datetime.now(books.zone).date()
    month = f"{today:%Y-%m}"
    start, end = month_span(month, books.zone)
    day_start = datetime(today.year, today.month, today.day, tzinfo=books.zone)
    unpriced = number not in books.tariffs.accounts
    async with books.store() as store:
        if await _known_nowhere(books, store, number):
            return 1
        record = await store.number_record(number)
        usage = await store.usage(number, month, today.isoformat())
        holdings = await store.holdings(number)
        since = holdings[-1].since if holdings else None
        calls = await store.ledger(
            number,
            since=start if since is None else max(start, since),
            until=end,
            kind=LedgerKind.CALL,
        )
        credits = await _rerating_credits(store, number, start)
        provider = record.provider if record is not None else None
        if provider is not None:
            held = await store.usage(provider_account(provider), month, today.isoformat())
        entries = (await store.ledger(number, since=since))[-20:] if unpriced else []
    todays = [entry for entry in calls if day_start <= entry.at < day_start + timedelta(days=1)]
    balance = usage.balance or ZERO
    if unpriced:
        rows = [("package", NO_PACKAGE), ("balance", str(balance))]
    else:
        rows = _priced(books, number, today, usage, (calls, todays), credits)
    if record is not None:
        rows.insert(0, ("number", f"{record.status.in_words} in the inventory"))
        rows.insert(1, ("subscriber", record.subscriber or "-"))
    if provider is not None:
        rows.insert(2, ("service provider", f"{provider}, balance {held.balance or ZERO}"))
    if since is not None:
        rows.insert(
            rows.index(("balance", str(balance))) + 1, ("holding since", _local(since, books))
        )
    rows += [("past holding", text) for text in _past_holdings(holdings, books)]
    print(number)
    for label, value in rows:
        print(f"  {label:<22}{value}")
    for entry in entries:
        print(_entry_line(entry, books))
    return 0


NO_PACKAGE = "none: no account in tariffs.yaml (its calls are not priced until one is added)"
"""The package of a number the inventory or a plan knows but tariffs.yaml does not: the
console's money page says "no account in tariffs.yaml" under Package too."""


def _priced(
    books: Books,
    number: str,
    today: date,
    usage: UsageSnapshot,
    calls: tuple[Sequence[LedgerEntry], Sequence[LedgerEntry]],
    credits: Mapping[str, Decimal],
) -> list[tuple[str, str]]:
    """The rows of a number with an account: its package and terms, and what its calls
    of the month and of the day (`calls`) cost."""
    account = books.tariffs.accounts[number]
    package = books.tariffs.package_on(number, today)
    month, (months, todays) = f"{today:%Y-%m}", calls
    balance = usage.balance or ZERO
    prepaid = "prepaid" if account.prepaid else "postpaid"
    if not account.prepaid:
        warning = f"{account.low_balance_warning}  (postpaid: not applied)"
    elif balance < account.low_balance_warning:
        warning = f"{account.low_balance_warning}  (balance is below it)"
    else:
        warning = str(account.low_balance_warning)
    included = package.included_minutes * 60
    rows = [
        ("package", f"{account.package} ({prepaid})"),
        ("balance", str(balance)),
        ("low-balance warning", warning),
        (f"this month {month}", _calls(months, credits)),
        (f"today {today}", _calls(todays, credits)),
        (
            "included minutes",
            f"{_minutes(usage.included_used)} of {package.included_minutes} used, "
            f"{_minutes(max(0, included - usage.included_used))} left",
        ),
        ("minimum monthly", _minimum(books.tariffs, number, today)),
        ("monthly rent", str(package.monthly_rent)),
        (
            "features",
            ", ".join(
                f"{feature_name(name)} since {day}"
                for name, day in sorted(account.features.items())
            )
            or "none",
        ),
    ]
    return rows


def _entry_line(entry: LedgerEntry, books: Books) -> str:
    return (
        f"  {_local(entry.at, books)}  {entry.amount:>10}  "
        f"{entry.kind.value + ' ':<12}{entry.ref}  {entry.note}"
    )


def _past_holdings(holdings: Sequence[Holding], books: Books) -> list[str]:
    """The holdings before the current one that left a balance: what a past holder owes
    (or was owed) stays on its holding, not on the next holder's balance."""
    lines = []
    for holding, after in itertools.pairwise(holdings):
        if holding.balance == ZERO:
            continue
        span = f"until {_local(after.since, books)}"
        if holding.since is not None:
            span = f"from {_local(holding.since, books)} {span}"
        holder = (
            "(holder not recorded)"
            if holding.holder is None
            else named_holder(holding.holder, holding.provider)
        )
        owes = "owes" if holding.balance < ZERO else "is owed"
        lines.append(f"{span}, {holder} {owes} {abs(holding.balance)}")
    return lines


def _local(moment: datetime | None, books: Books) -> str:
    assert moment is not None
    return f"{moment.astimezone(books.zone):%Y-%m-%d %H:%M}"


async def _show_subscriber(books: Books, subscriber: str) -> int:
    """What a subscriber left on the numbers it held before they came back to the pool:
    the operator's receivable from a company that left in debt."""
    async with books.store() as store:
        found = await store.subscribers(name=subscriber)
        if not found:
            print(f"no subscriber {subscriber} (hotline400 providers show)", file=sys.stderr)
            return 1
        left = [held for held in await store.holdings_of(subscriber) if held.balance != ZERO]
    print(f"subscriber {named_holder(subscriber, found[0].provider)}")
    for held in left:
        span = f"until {_local(held.until, books)}"
        if held.since is not None:
            span = f"from {_local(held.since, books)} {span}"
        owes = "owes" if held.balance < ZERO else "is owed"
        print(f"  {held.number}  {span}  {owes} {abs(held.balance)}")
    total = sum((held.balance for held in left), ZERO)
    print(f"  {'left on past holdings':<22}{total}")
    return 0


async def _show_provider(books: Books, provider: str) -> int:
    """The provider's level: its balance and latest entries (top-ups, feature fee
    deductions for its subscribers' numbers)."""
    account = provider_account(provider)
    today = datetime.now(books.zone).date()
    async with books.store() as store:
        found = await store.providers(provider)
        if not found:
            print(f"no service provider {provider} (hotline400 providers list)", file=sys.stderr)
            return 1
        usage = await store.usage(account, f"{today:%Y-%m}", today.isoformat())
        entries = (await store.ledger(account))[-20:]
    print(account)
    print(f"  {'balance':<22}{usage.balance or ZERO}")
    print(f"  {'low-balance warning':<22}under {found[0].low_balance_warning}")
    for entry in entries:
        print(_entry_line(entry, books))
    return 0


def _minimum(tariffs: Tariffs, number: str, day: date) -> str:
    whose = "its own" if tariffs.accounts[number].minimum_monthly is not None else "package's"
    rate = rate_text(tariffs.charged_rate(number, day))
    return f"{tariffs.minimum_of(number)} ({whose}) at {rate}"


async def _rerating_credits(store: Store, number: str, since: datetime) -> dict[str, Decimal]:
    """What the re-ratings booked since `since` credited each call: its price now is its
    entry's debit less that, as the cost counters and the caps count it."""
    credits: dict[str, Decimal] = {}
    for entry in await store.ledger(number, since=since, kind=LedgerKind.ADJUSTMENT):
        if (call_id := rerated_call_id(entry.ref)) is not None:
            credits[call_id] = credits.get(call_id, ZERO) + entry.amount
    return credits


def _calls(entries: Sequence[LedgerEntry], credits: Mapping[str, Decimal]) -> str:
    cost = sum((ZERO - entry.amount - credits.get(entry.ref, ZERO) for entry in entries), ZERO)
    return f"{len(entries)} call(s), cost {cost}"


def _minutes(seconds: int) -> str:
    return str(to_fen(Decimal(seconds) / 60))


# --- terms ---------------------------------------------------------------------------


async def _terms(books: Books, args: argparse.Namespace) -> int:
    today = datetime.now(books.zone).date()
    since = args.day or today
    numbers = books.numbers(args.number)
    async with books.store() as store:
        histories = {number: await store.terms_history(number) for number in numbers}
        if args.record:
            return await _record_terms(books, store, histories, since)
    for number in numbers:
        now = terms_of(books.tariffs, number, today)
        _print_history(number, histories[number], now, books.zone)
    return 0


async def _record_terms(
    books: Books, store: Store, histories: dict[str, list[RecordedTerms]], since: date
) -> int:
    """Record the file's terms that changed; refuse them all if any breaks the rule."""
    now = datetime.now(books.zone)
    records, refusals, unchanged = [], [], []
    for number, history in histories.items():
        new = terms_of(books.tariffs, number, since)
        if history and history[-1].terms == new:
            unchanged.append(number)
            continue
        if history:
            old = history[-1].terms
            used = in_use(books.tariffs.accounts[number].opened, since)
            try:
                check_terms_change(number, old, new, used)
            except MinimumChangeRefused as error:
                refusals.append(str(error))
                continue
            note = f"changed from {old.describe()}"
        else:
            note = "first recorded"
        records.append(RecordedTerms(number, since, new, now, note))
    if refusals:
        for refusal in refusals:
            print(refusal, file=sys.stderr)
        print(f"nothing recorded: {len(refusals)} refused change(s)", file=sys.stderr)
        return 1
    await store.record_terms(records)
    for record in records:
        print(f"{record.number}  from {since}  {record.terms.describe()}  {record.note}")
    if unchanged:
        print(f"unchanged: {', '.join(unchanged)}")
    return 0


def _print_history(
    number: str, history: list[RecordedTerms], current: Terms, zone: ZoneInfo
) -> None:
    print(number)
    for record in history:
        recorded = f"recorded {record.recorded_at.astimezone(zone):%Y-%m-%d %H:%M}"
        print(f"  from {record.since}  {record.terms.describe()}  ({record.note}; {recorded})")
    if not history:
        print(f"  nothing recorded; tariffs.yaml gives {current.describe()}")
    elif history[-1].terms != current:
        print(f"  tariffs.yaml now gives {current.describe()}: not recorded (--record)")


# --- fees ----------------------------------------------------------------------------


async def _fees(books: Books, args: argparse.Namespace) -> int:
    day = args.day or datetime.now(books.zone).date()
    due = [
        entry
        for number in books.numbers()
        for entry in feature_fees_due(books.tariffs, number, day)
    ]
    if not due:
        print(f"no feature was switched on {day}")
        return 0
    before: set[tuple[str, str]] = set()
    async with books.store() as store, books.warnings() as watch:
        providers = await providers_of(store, [entry.number for entry in due])
        due = [on_payer(entry, providers) for entry in due]
        for number in sorted({entry.number for entry in due}):
            booked_fees = await store.ledger(number, kind=LedgerKind.FEATURE_FEE)
            before.update((number, entry.ref) for entry in booked_fees)
        await book_warning_low_balances(watch, store, due, lambda: store.post_ledger(due))
    booked = ZERO
    for entry in due:
        fee = ZERO - entry.amount
        if (entry.number, entry.ref) in before:
            state = "booked before"
        else:
            state = "booked"
            booked += fee
        print(f"{entry.number}  {entry.ref:<32}{fee:>10}  {state}")
    print(f"feature fees of {day}: {booked} booked")
    return 0
