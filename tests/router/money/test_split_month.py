"""A month two companies held a 400 number in: each holder has its own statement of it.

4000000008 (package `office`: rent 62.00, 0.30/min, minimum consumption 31.00; the tariffs'
account `opened` 2026-11-02, alpha's day) is alpha's until alpha cancels it on 2026-12-07
10:00; with no notice and no freeze (numbers.yaml may shorten both) it is back in the pool
at once and beta applies for it at 12:00 (opening fee 600.00, its first entry). December
has 31 days:

    alpha  12-01 .. 12-06   6 days   2 calls 0.60   rent 62.00 x 6/31 = 12.00,
                                                   minimum 31.00 x 6/31 = 6.00, top-up 5.40
    beta   12-07 .. 12-31  25 days   1 call  0.90   rent 62.00 x 25/31 = 50.00,
                                                   minimum 31.00 x 25/31 = 25.00, top-up 24.10

A part month is charged as the month an account opens in (rating.closing): rent and minimum
in proportion to the holding's days, the day the number changed hands being the new
holder's. Closing December closes both parts, each on its own holding's balance.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules, Timing
from rating.ledger import LedgerEntry, LedgerKind
from rating.tariff_loader import parse_tariffs
from router.cli import main
from router.money.balance_alerts import BalanceAlerts
from router.money.billing import close_month, month_statements, reopen_month
from router.money.booking_alerts import Watch
from router.money.books import load_books
from router.money.rerating import Change, RatingRun, rate_cdrs
from router.numbers.inventory import Inventory
from router.storage.cdr import (
    CDR,
    AddLeg,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    PostLedger,
    StartCall,
)
from router.storage.number_rows import PartyRow
from router.storage.protocol import Store
from tests.conftest import UNWATCHED, opened_store

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4000000008"
D = Decimal
TARIFFS_FILE = f"""\
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.10}}
  mobile: {{per_seconds: 60, charge: 0.10}}
  other: {{per_seconds: 60, charge: 0.10}}
packages:
  office:
    monthly_rent: 62.00
    nationwide: {{per_seconds: 60, charge: 0.30}}
    minimum_monthly: 31.00
accounts:
  "{NUMBER}": {{package: office, opened: 2026-11-02, prepaid: false}}
"""
TARIFFS = parse_tariffs("tariffs.yaml", TARIFFS_FILE)
WATCH = Watch(TARIFFS, BalanceAlerts())
AT_ONCE = NumberRules(
    timing=Timing(cancellation_notice_days=0, cancelled_freeze_days=0, review_min_working_days=0)
)
HANDOVER = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)


def at(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=SHANGHAI)


async def held_by(store: Store, subscriber: str, provider: str, when: datetime) -> None:
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    calendar = OfficialCalendar()
    for action in (
        lambda r, t: lifecycle.reserve(r, provider, t, AT_ONCE),
        lambda r, t: lifecycle.apply(r, subscriber, provider, t, AT_ONCE),
        lambda r, t: lifecycle.submit(r, t, AT_ONCE, calendar),
        lambda r, t: lifecycle.approve(r, "ops", t, AT_ONCE, calendar),
    ):
        await inventory.act(NUMBER, when, action)


async def answered(store: Store, call_id: str, when: datetime, charge: str) -> None:
    cdr = CDR(call_id, NUMBER, "01062345678", "01062345678", "fixed", when)
    leg = Leg(1, "01087654321", "ANSWER", when, 0, 60, ForwardReason.PRIMARY)
    money = {"caller_share": D("0.10"), "callee_share": D(charge), "total": D(charge) + D("0.10")}
    await store.apply(
        [
            StartCall(cdr),
            AddLeg(call_id, leg),
            FinishCall(
                call_id,
                {
                    "answered_at": when,
                    "ended_at": when + timedelta(seconds=60),
                    "billable_seconds": 60,
                    "outcome": Outcome.ANSWERED,
                    **money,
                },
            ),
            PostLedger(LedgerEntry(NUMBER, when, -D(charge), LedgerKind.CALL, call_id)),
        ]
    )


async def split_december(store: Store) -> None:
    """alpha's December up to the handover, beta's after it."""
    await store.add_numbers([NumberRecord(NUMBER)], at(2026, 11, 1, 9, 0))
    await held_by(store, "alpha", "sp-east", at(2026, 11, 2, 10, 0))
    await answered(store, "alpha.1", at(2026, 12, 3, 9, 0), "0.30")
    await answered(store, "alpha.2", at(2026, 12, 6, 9, 0), "0.30")
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    await inventory.act(NUMBER, HANDOVER, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE))
    await inventory.act(NUMBER, HANDOVER, None)  # the freeze of no length runs out
    await held_by(store, "beta", "sp-west", HANDOVER + timedelta(hours=2))
    await answered(store, "beta.1", at(2026, 12, 20, 9, 0), "0.90")


def figures(statement) -> tuple[int, Decimal, Decimal, Decimal]:
    return (
        statement.usage.calls,
        statement.call_charges,
        statement.rent,
        statement.minimum_topup,
    )


async def test_each_holder_of_a_split_month_has_its_own_statement(store_url: str) -> None:
    async with opened_store(store_url) as store:
        await split_december(store)
        alpha, beta = await month_statements(store, TARIFFS, NUMBER, "2026-12")

    assert (alpha.since, alpha.until) == (at(2026, 12, 1), HANDOVER)
    assert figures(alpha.statement) == (2, D("0.60"), D("12.00"), D("5.40"))
    assert alpha.statement.number_fees == D("0.00")
    assert alpha.statement.opening_balance == D("-600.00")  # its opening fee
    assert [(e.kind, e.ref, e.at) for e in alpha.pending] == [
        (LedgerKind.RENT, "2026-12@2026-12-07T10:00:00+08:00", at(2026, 12, 1)),
        (
            LedgerKind.MINIMUM_TOPUP,
            "2026-12@2026-12-07T10:00:00+08:00",
            HANDOVER - timedelta(microseconds=1),
        ),
    ]
    assert "(6 of 31 days)" in alpha.pending[0].note

    assert (beta.since, beta.until) == (HANDOVER, at(2027, 1, 1))
    assert figures(beta.statement) == (1, D("0.90"), D("50.00"), D("24.10"))
    assert beta.statement.opening_balance == D("0.00")
    assert [(e.kind, e.ref, e.at) for e in beta.pending] == [
        (LedgerKind.RENT, "2026-12", HANDOVER),
        (LedgerKind.MINIMUM_TOPUP, "2026-12", at(2027, 1, 1) - timedelta(microseconds=1)),
    ]
    assert "(25 of 31 days)" in beta.pending[0].note


async def test_a_statement_read_a_page_at_a_time_is_the_one_read_at_once(
    store_url: str,
) -> None:
    """A month of more calls than a page is read a page at a time (cdr_pages): its pages,
    some across the handover, one holding a November call rung a day early and one a call
    without a price, sum to the statements read in one page, to the fen."""
    async with opened_store(store_url) as store:
        await split_december(store)
        for day in range(8, 20):
            await answered(store, f"beta.{day}", at(2026, 12, day, 11, 0), "0.30")
        await answered(store, "november", at(2026, 11, 30, 23, 0), "0.30")
        unpriced = CDR("unpriced", NUMBER, "01062345678", "01062345678", "fixed", at(2026, 12, 9))
        answer = {"answered_at": at(2026, 12, 9), "outcome": Outcome.ANSWERED}
        await store.apply([StartCall(unpriced), FinishCall("unpriced", answer)])
        at_once = await month_statements(store, TARIFFS, NUMBER, "2026-12")
        paged = await month_statements(store, TARIFFS, NUMBER, "2026-12", page_size=2)

    assert paged == at_once
    assert [(part.statement.usage.calls, part.unpriced) for part in paged] == [(2, 0), (13, 1)]
    assert paged[1].statement.call_charges == D("4.50")


async def test_closing_a_split_month_closes_both_holdings_on_their_own_balances(
    store_url: str,
) -> None:
    async with opened_store(store_url) as store:
        await split_december(store)
        closed, booked = await close_month(
            store, TARIFFS, [NUMBER], "2026-12", date(2027, 1, 1), book=True, watch=WATCH
        )
        holdings = await store.holdings(NUMBER)
        after = await month_statements(store, TARIFFS, NUMBER, "2026-12")
        reversals = await reopen_month(
            store, TARIFFS, [NUMBER], "2026-12", date(2027, 1, 2), by="ops", reason="t", book=False
        )

    assert booked == 4
    assert [s.closed for s in closed[NUMBER]] == [True, True]
    assert [s.closed for s in after] == [True, True]
    assert [s.statement.closing_balance for s in after] == [D("-618.00"), D("-675.00")]
    # alpha: 600.00 + 0.60 + 12.00 + 5.40; beta: 600.00 + 0.90 + 50.00 + 24.10
    assert [h.balance for h in holdings] == [D("-618.00"), D("-675.00")]
    assert sorted(e.amount for e in reversals) == [D("5.40"), D("12.00"), D("24.10"), D("50.00")]


def test_bill_lists_each_holders_part_of_the_month(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nspool_dir: "{tmp_path / "spool"}"\n', encoding="utf-8"
    )
    (config / "tariffs.yaml").write_text(TARIFFS_FILE, encoding="utf-8")

    async def written() -> None:
        async with opened_store(store_url) as store:
            await split_december(store)

    asyncio.run(written())
    month = ["bill", "--config", str(config), "--month", "2026-12"]
    assert main(month) == 0
    table = capsys.readouterr().out
    assert main([*month, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    assert (
        f"{NUMBER}  2026-12  package office  holding 2026-12-01 00:00 to 2026-12-07 10:00" in table
    )
    assert (
        f"{NUMBER}  2026-12  package office  holding 2026-12-07 10:00 to 2027-01-01 00:00" in table
    )
    assert [(r["from"], r["until"], r["rent"], r["closing_balance"]) for r in rows] == [
        ("2026-12-01T00:00:00+08:00", "2026-12-07T10:00:00+08:00", "-12.00", "-618.00"),
        ("2026-12-07T10:00:00+08:00", "2027-01-01T00:00:00+08:00", "-50.00", "-675.00"),
    ]


async def registered(store: Store) -> None:
    """alpha a subscriber of sp-east, beta of sp-west, as the inventory's register has them."""
    for name, provider in (
        ("sp-east", None),
        ("sp-west", None),
        ("alpha", "sp-east"),
        ("beta", "sp-west"),
    ):
        await store.add_party(PartyRow(name, name.upper(), "", "", "", at(2026, 11, 1), provider))


def test_each_statement_of_a_split_month_names_its_holder(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two statements of 4000000008 for December: the first alpha's through sp-east (alpha
    no longer holds the number; its holding's row names it), the second beta's through
    sp-west (the inventory's record names it), in the table, the CSV and the JSON alike."""
    config = tmp_path / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nspool_dir: "{tmp_path / "spool"}"\n', encoding="utf-8"
    )
    (config / "tariffs.yaml").write_text(TARIFFS_FILE, encoding="utf-8")

    async def written() -> None:
        async with opened_store(store_url) as store:
            await registered(store)
            await split_december(store)

    asyncio.run(written())
    month = ["bill", "--config", str(config), "--month", "2026-12"]
    assert main(month) == 0
    headings = [line for line in capsys.readouterr().out.splitlines() if line.startswith(NUMBER)]
    assert main([*month, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main([*month, "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)

    assert headings == [
        f"{NUMBER}  2026-12  package office  holding 2026-12-01 00:00 to 2026-12-07 10:00"
        "  holder alpha (provider sp-east)",
        f"{NUMBER}  2026-12  package office  holding 2026-12-07 10:00 to 2027-01-01 00:00"
        "  holder beta (provider sp-west)",
    ]
    assert [(r["holder"], r["provider"], r["rent"]) for r in rows] == [
        ("alpha", "sp-east", "-12.00"),
        ("beta", "sp-west", "-50.00"),
    ]
    assert [(s["holder"], s["provider"], s["rent"]) for s in exported] == [
        ("alpha", "sp-east", "12.00"),
        ("beta", "sp-west", "50.00"),
    ]
    with pytest.raises(SystemExit):  # and --help says so: a line per statement, not per number
        main(["bill", "--help"])
    assert "csv or xlsx (a line per statement:" in " ".join(capsys.readouterr().out.split())


async def test_a_part_whose_holder_was_never_recorded_names_nobody(store_url: str) -> None:
    """alpha, unknown to the register, is named without a provider; the rest of December,
    which nobody took from the pool, names no holder."""
    async with opened_store(store_url) as store:
        await store.add_numbers([NumberRecord(NUMBER)], at(2026, 11, 1, 9, 0))
        await held_by(store, "alpha", "sp-east", at(2026, 11, 2, 10, 0))
        inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
        await inventory.act(NUMBER, HANDOVER, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE))
        await inventory.act(NUMBER, HANDOVER, None)
        alpha, pool = await month_statements(store, TARIFFS, NUMBER, "2026-12")

    assert (alpha.holder, alpha.provider) == ("alpha", None)
    assert (pool.holder, pool.provider) == (None, None)


async def test_the_rest_of_a_month_the_number_spent_in_the_pool_owes_nothing(
    store_url: str,
) -> None:
    """Nobody takes 4000000008 after alpha: its holding from the 7th on books nothing at
    close, and the month closes with alpha's part alone."""
    async with opened_store(store_url) as store:
        await store.add_numbers([NumberRecord(NUMBER)], at(2026, 11, 1, 9, 0))
        await held_by(store, "alpha", "sp-east", at(2026, 11, 2, 10, 0))
        await answered(store, "alpha.1", at(2026, 12, 3, 9, 0), "0.30")
        inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
        await inventory.act(NUMBER, HANDOVER, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE))
        await inventory.act(NUMBER, HANDOVER, None)
        closed, booked = await close_month(
            store, TARIFFS, [NUMBER], "2026-12", date(2027, 1, 1), book=True, watch=WATCH
        )
        holdings = await store.holdings(NUMBER)

    alpha, pool = closed[NUMBER]
    assert (alpha.statement.rent, alpha.statement.minimum_topup) == (D("12.00"), D("5.70"))
    assert (pool.statement.rent, pool.statement.minimum_topup, pool.in_service) == (
        D("0.00"),
        D("0.00"),
        False,
    )
    assert booked == 2
    assert [h.balance for h in holdings] == [D("-618.00"), D("0.00")]


def rerating_config(tmp_path: Path, store_url: str) -> Path:
    """The tariffs above with the rate doubled to 0.60, and a plan with a home area."""
    config = tmp_path / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(
        f'store: "{store_url}"\nspool_dir: "{tmp_path / "spool"}"\n', encoding="utf-8"
    )
    doubled = TARIFFS_FILE.replace("charge: 0.30", "charge: 0.60")
    (config / "tariffs.yaml").write_text(doubled, encoding="utf-8")
    (config / "plans" / f"{NUMBER}.yaml").write_text(
        f'number: "{NUMBER}"\nname: Office\nhome_area_code: "010"\n'
        'default: {target: "01087654321"}\n',
        encoding="utf-8",
    )
    return config


async def rerate_december(config: Path) -> tuple[RatingRun, list[str]]:
    """`hotline400 rate --rerate` over December, run on 5 January: what it counted, and the
    calls whose price it changed."""
    books = load_books(config)
    changes: list[Change] = []
    async with books.store() as store:
        run = await rate_cdrs(
            books,
            store,
            at(2026, 12, 1),
            at(2027, 1, 1),
            rerate=True,
            now=at(2027, 1, 5, 9, 0),
            watch=WATCH,
            changed=changes.append,
        )
    return run, [change.call_id for change in changes]


@pytest.mark.parametrize(
    ("closed", "waiting", "repriced"),
    [("alpha", ["alpha.1", "alpha.2"], ["beta.1"]), ("beta", ["beta.1"], ["alpha.1", "alpha.2"])],
)
async def test_rerating_refuses_the_calls_of_the_closed_part_of_a_split_month_only(
    tmp_path: Path, store_url: str, closed: str, waiting: list[str], repriced: list[str]
) -> None:
    """One holder's part of December is closed, the other's is not: a re-rating re-prices
    the calls of the open part and leaves those of the closed part at their old price until
    the month is reopened; then they are re-priced too."""
    config = rerating_config(tmp_path, store_url)
    async with opened_store(store_url) as store:
        await split_december(store)
        alpha, beta = await month_statements(store, TARIFFS, NUMBER, "2026-12")
        part = {"alpha": alpha, "beta": beta}[closed]
        await store.post_ledger(part.pending)  # that part's close, as bill --close books it

    first, changed = await rerate_december(config)
    reason = (
        f"month 2026-12 of {NUMBER} closed: reopen it to re-price its calls, hotline400 bill "
        f"--month 2026-12 --number {NUMBER} --reopen --by NAME --reason WHY"
    )
    assert changed == repriced
    assert first.repriced == len(repriced)
    assert first.skipped == {reason: len(waiting)}

    async with opened_store(store_url) as store:
        parts = await month_statements(store, TARIFFS, NUMBER, "2026-12")
        assert [p.closed for p in parts] == [closed == "alpha", closed == "beta"]
        await reopen_month(
            store, TARIFFS, [NUMBER], "2026-12", date(2027, 1, 5), by="ops", reason="t", book=True
        )

    second, changed = await rerate_december(config)
    assert changed == waiting
    assert second.repriced == len(waiting)
    assert not second.skipped
    async with opened_store(store_url) as store:
        cdrs = await store.query_cdrs(number=NUMBER, since=at(2026, 12, 1), until=at(2027, 1, 1))
        holdings = await store.holdings(NUMBER)
    assert {cdr.call_id: cdr.callee_share for cdr in cdrs} == {
        "alpha.1": D("0.60"),
        "alpha.2": D("0.60"),
        "beta.1": D("0.60"),
    }
    # each holding pays its calls' new price: alpha 600.00 + 2 x 0.60, beta 600.00 + 0.60
    assert [h.balance for h in holdings] == [D("-601.20"), D("-600.60")]
