"""`hotline400 rate`, on each store engine: calls without a price get one; after a tariff
change, `--rerate` re-prices calls, updates their CDRs and books the differences as
adjustments, once.

Package `office` of 4000000008 (home area 010) in tariffs v1: 2 included minutes a month,
0.10/min answered locally, 0.30/min long distance; a fixed-line caller pays 0.22 for the
first 3 minutes. Calls, none priced by the router:

    u1  2026-11-05 10:00  answered in Beijing (local), 150 s: 120 s included, 0.10 charged
    u2  2026-11-05 11:00  answered in Jinan (long distance), 61 s: 2 min at 0.30 = 0.60
    x1  2026-11-05 12:00  to 4000000001, which has no account: never priced
"""

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.numbers.inventory import Inventory
from router.storage.cdr import (
    CDR,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
)
from router.storage.rows import Holding, UsageSnapshot
from tests.conftest import E2E_CONFIG, UNWATCHED, call, opened_store, running_router, store_url_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4000000008"
D = Decimal


def tariffs(version: str, long_distance: str = "0.30", local: str = "0.10") -> str:
    return f"""\
version: "{version}"
caller_tariffs:
  fixed: {{first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}}
  mobile: {{per_seconds: 60, charge: 0.15}}
  other: {{first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}}
packages:
  office:
    included_minutes: 2
    local: {{per_seconds: 60, charge: {local}}}
    long_distance: {{per_seconds: 60, charge: {long_distance}}}
accounts:
  "{NUMBER}": {{package: office}}
"""


def plan(number: str) -> str:
    return (
        f'number: "{number}"\nname: Office\nhome_area_code: "010"\n'
        'default: {target: "01087654321"}\n'
    )


def unpriced_call(call_id: str, number: str, hour: int, destination: str, talk: int) -> list[CdrOp]:
    started = datetime(2026, 11, 5, hour, tzinfo=SHANGHAI)
    caller = "02087654321"
    cdr = CDR(
        call_id,
        number,
        caller,
        caller,
        "fixed",
        started,
        CallerRegion("广东"),
        legs=(Leg(1, destination, "ANSWER", started, 0, talk, ForwardReason.PRIMARY),),
    )
    finish = {
        "answered_at": started,
        "ended_at": started + timedelta(seconds=talk),
        "billable_seconds": talk,
        "outcome": Outcome.ANSWERED,
    }
    return [StartCall(cdr), FinishCall(call_id, finish)]


CALLS = [
    *unpriced_call("u1", NUMBER, 10, "01087654321", 150),
    *unpriced_call("u2", NUMBER, 11, "053188880000", 61),
    *unpriced_call("x1", "4000000001", 12, "01087654321", 60),
]


async def write(url: str, ops: Sequence[CdrOp]) -> None:
    async with opened_store(url) as store:
        await store.apply(ops)


async def books(
    url: str, number: str = NUMBER
) -> tuple[list[CDR], list[LedgerEntry], UsageSnapshot]:
    """The CDRs (oldest first), the ledger and November's counters of `number`."""
    async with opened_store(url) as store:
        cdrs = await store.query_cdrs(number=number)
        return (
            cdrs[::-1],
            await store.ledger(number),
            await store.usage(number, "2026-11", "2026-11-05"),
        )


def money(cdrs: Sequence[CDR]) -> list[tuple[str, str, str, str, str | None]]:
    return [
        (cdr.call_id, str(cdr.caller_share), str(cdr.callee_share), str(cdr.total), cdr.tariff_id)
        for cdr in cdrs
    ]


def ledger_rows(entries: Sequence[LedgerEntry]) -> list[tuple[str, str, str]]:
    return [(entry.kind.value, entry.ref, str(entry.amount)) for entry in entries]


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "config"
    (config / "plans").mkdir(parents=True)
    (config / "router.yaml").write_text(f'store: "{store_url}"\n', encoding="utf-8")
    (config / "tariffs.yaml").write_text(tariffs("v1"), encoding="utf-8")
    for number in (NUMBER, "4000000001"):
        (config / "plans" / f"{number}.yaml").write_text(plan(number), encoding="utf-8")
    asyncio.run(write(store_url, CALLS))
    return config


def rate(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    capsys.readouterr()
    assert (
        main(["rate", "--config", str(config), "--from", "2026-11-01", "--to", "2026-11-30", *args])
        == 0
    )
    captured = capsys.readouterr()
    return captured.out, captured.err


def change_tariffs(config: Path, text: str) -> None:
    (config / "tariffs.yaml").write_text(text, encoding="utf-8")


def test_answered_calls_without_a_price_are_priced_and_booked(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, err = rate(config, capsys)
    cdrs, ledger, usage = asyncio.run(books(store_url_of(config)))
    assert money(cdrs) == [
        ("u1", "0.22", "0.10", "0.32", "office@v1"),
        ("u2", "0.22", "0.60", "0.82", "office@v1"),
    ]
    assert ledger_rows(ledger) == [("call", "u1", "-0.10"), ("call", "u2", "-0.60")]
    assert (usage.included_used, usage.month_cost, usage.balance) == (120, D("0.70"), D("-0.70"))
    assert out.splitlines() == [
        "call id  400 number  total      callee share  tariff",
        "u1       4000000008  - -> 0.32  - -> 0.10     office@v1",
        "u2       4000000008  - -> 0.82  - -> 0.60     office@v1",
        "priced 2, re-priced 0, unchanged 0, skipped 1 (no account in the tariffs: 1)",
    ]
    assert err == ""  # not a terminal: no progress bar (test_rate_progress.py beside)


def test_without_rerate_priced_calls_are_left_as_they_are(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    out, _ = rate(config, capsys)
    cdrs, _, _ = asyncio.run(books(store_url_of(config)))
    assert out.splitlines() == [
        "priced 0, re-priced 0, unchanged 2, skipped 1 (no account in the tariffs: 1)"
    ]
    assert [cdr.tariff_id for cdr in cdrs] == ["office@v1", "office@v1"]


def test_rerating_after_a_tariff_change_updates_cdrs_and_books_the_differences(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    out, _ = rate(config, capsys, "--rerate")
    cdrs, ledger, usage = asyncio.run(books(store_url_of(config)))
    assert out.splitlines() == [
        "call id  400 number  total         callee share  tariff",
        "u1       4000000008  0.32 -> 0.32  0.10 -> 0.10  office@v1 -> office@v2",
        "u2       4000000008  0.82 -> 0.62  0.60 -> 0.40  office@v1 -> office@v2",
        "priced 0, re-priced 2, unchanged 0, skipped 1 (no account in the tariffs: 1); "
        "adjustments booked: +0.20",
    ]
    assert money(cdrs) == [
        ("u1", "0.22", "0.10", "0.32", "office@v2"),
        ("u2", "0.22", "0.40", "0.62", "office@v2"),
    ]
    assert ledger_rows(ledger) == [
        ("call", "u1", "-0.10"),
        ("call", "u2", "-0.60"),
        ("adjustment", "rerate:u2:1", "0.20"),
    ]
    assert ledger[-1].note == "re-rated call u2: office@v1 0.60 -> office@v2 0.40"
    assert usage.balance == D("-0.50")


def test_a_rerating_prints_the_calls_it_priced_first_then_those_it_re_priced(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A call stored without a price after u1 and u2 were priced, answered after both, is
    priced by the re-rating that re-prices them: its row comes first all the same, and the
    columns of the two groups are aligned together."""
    rate(config, capsys)
    asyncio.run(
        write(
            store_url_of(config), unpriced_call("u3-answered-last", NUMBER, 13, "01087654321", 60)
        )
    )
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    out, _ = rate(config, capsys, "--rerate")
    assert out.splitlines() == [
        "call id           400 number  total         callee share  tariff",
        "u3-answered-last  4000000008  - -> 0.32     - -> 0.10     office@v2",
        "u1                4000000008  0.32 -> 0.32  0.10 -> 0.10  office@v1 -> office@v2",
        "u2                4000000008  0.82 -> 0.62  0.60 -> 0.40  office@v1 -> office@v2",
        "priced 1, re-priced 2, unchanged 0, skipped 1 (no account in the tariffs: 1); "
        "adjustments booked: +0.20",
    ]


async def cost_counters(url: str) -> list[tuple[str, Decimal, Decimal]]:
    """Month and day cost of `NUMBER` the caps read, on the calls' day and on today's."""
    counters = []
    async with opened_store(url) as store:
        for day in ("2026-11-05", f"{datetime.now(SHANGHAI):%Y-%m-%d}"):
            usage = await store.usage(NUMBER, day[:7], day)
            counters.append((day, usage.month_cost, usage.day_cost))
    return counters


def test_rerating_moves_the_cost_counters_of_the_calls_month_and_day(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The caps and `account show` read the month's and day's cost from the counters: after a
    re-rating they count the calls at their new prices, on the day each call was answered,
    not on the day of the re-rating; a second run moves nothing more."""
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    rate(config, capsys, "--rerate")
    url = store_url_of(config)
    today = f"{datetime.now(SHANGHAI):%Y-%m-%d}"
    assert asyncio.run(cost_counters(url)) == [
        ("2026-11-05", D("0.50"), D("0.50")),  # u1 0.10 + u2 0.40, the new prices
        (today, D("0.00"), D("0.00")),
    ]
    rate(config, capsys, "--rerate")
    assert asyncio.run(cost_counters(url))[0] == ("2026-11-05", D("0.50"), D("0.50"))


def test_account_show_counts_re_priced_calls_at_their_new_price(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    rate(config, capsys, "--rerate")
    capsys.readouterr()
    show = ["account", "show", "--config", str(config), "--number", NUMBER]
    assert main([*show, "--today", "2026-11-05"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  this month 2026-11    2 call(s), cost 0.50" in lines
    assert "  today 2026-11-05      2 call(s), cost 0.50" in lines


def test_rerating_twice_changes_nothing(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    rate(config, capsys, "--rerate")
    before = asyncio.run(books(store_url_of(config)))
    out, _ = rate(config, capsys, "--rerate")
    after = asyncio.run(books(store_url_of(config)))
    assert out.splitlines() == [
        "priced 0, re-priced 0, unchanged 2, skipped 1 (no account in the tariffs: 1)"
    ]
    assert after == before


def test_a_price_changed_back_books_a_second_adjustment(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    rate(config, capsys, "--rerate")
    change_tariffs(config, tariffs("v1"))
    rate(config, capsys, "--rerate")
    cdrs, ledger, usage = asyncio.run(books(store_url_of(config)))
    assert ledger_rows(ledger)[2:] == [
        ("adjustment", "rerate:u2:1", "0.20"),
        ("adjustment", "rerate:u2:2", "-0.20"),
    ]
    assert money(cdrs)[1] == ("u2", "0.22", "0.60", "0.82", "office@v1")
    assert usage.balance == D("-0.70")


def test_rerating_keeps_the_included_seconds_the_first_pricing_took(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rate(config, capsys)
    change_tariffs(config, tariffs("v2", local="0.20"))
    rate(config, capsys, "--rerate")
    cdrs, ledger, usage = asyncio.run(books(store_url_of(config)))
    # u1: 150 s, 120 s of them included as before; the other 30 s cost one minute at 0.20
    assert money(cdrs)[0] == ("u1", "0.22", "0.20", "0.42", "office@v2")
    assert ledger_rows(ledger)[-1] == ("adjustment", "rerate:u1:1", "-0.10")
    assert usage.included_used == 120


async def place_router_calls(tmp_path: Path, store_url: str) -> None:
    async with running_router(tmp_path, store=store_url) as router:
        payment = LedgerEntry(
            NUMBER, datetime(2026, 11, 23, 9, tzinfo=SHANGHAI), D("20.00"), LedgerKind.PAYMENT, "r1"
        )
        await router.store.post_ledger([payment])
        for n in range(2):
            assert (await call(router, dialled=NUMBER, uniqueid=f"live.{n}")).error is None


def test_calls_the_router_priced_are_re_priced_after_a_tariff_change(
    tmp_path: Path, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(place_router_calls(tmp_path, store_url))
    config = tmp_path / "config"  # the router's copy of tests/e2e_config
    (config / "router.yaml").write_text(
        (E2E_CONFIG / "router.yaml").read_text(encoding="utf-8") + f'store: "{store_url}"\n',
        encoding="utf-8",
    )
    text = (E2E_CONFIG / "tariffs.yaml").read_text(encoding="utf-8")
    (config / "tariffs.yaml").write_text(
        text.replace('"e2e"', '"e2e2"').replace("charge: 0.60", "charge: 0.30"), encoding="utf-8"
    )
    capsys.readouterr()
    assert (
        main(
            [
                "rate",
                "--config",
                str(config),
                "--from",
                "2026-11-23",
                "--to",
                "2026-11-23",
                "--rerate",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    cdrs, ledger, usage = asyncio.run(books(store_url))
    assert out.splitlines()[1:] == [
        "live.0   4000000008  0.82 -> 0.52  0.60 -> 0.30  e2e-regional@e2e -> e2e-regional@e2e2",
        "live.1   4000000008  0.82 -> 0.52  0.60 -> 0.30  e2e-regional@e2e -> e2e-regional@e2e2",
        "priced 0, re-priced 2, unchanged 0, skipped 0; adjustments booked: +0.60",
    ]
    assert [cdr.callee_share for cdr in cdrs] == [D("0.30"), D("0.30")]
    assert ledger_rows(ledger)[-2:] == [
        ("adjustment", "rerate:live.0:1", "0.30"),
        ("adjustment", "rerate:live.1:1", "0.30"),
    ]
    assert usage.balance == D("19.40")


def test_a_number_without_an_account_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert (
        main(
            [
                "rate",
                "--config",
                str(config),
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-30",
                "--number",
                "4000000001",
            ]
        )
        == 1
    )
    assert "4000000001 has no account in tariffs.yaml" in capsys.readouterr().err


async def back_in_the_pool(url: str) -> datetime:
    """4000000008, whose November calls are above, reserved on 2026-11-10 and released: back
    in the pool 30 minutes later, a new holding of it begins. Returns that instant."""
    rules, released = NumberRules(), datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)
    async with opened_store(url) as store:
        await store.add_numbers([NumberRecord(NUMBER, rules.grade(NUMBER))], released)
        numbers = Inventory(store, rules, OfficialCalendar(), UNWATCHED)
        await numbers.act(NUMBER, released, lambda r, t: lifecycle.reserve(r, "sp-east", t, rules))
        await numbers.act(NUMBER, released, lambda r, t: lifecycle.release(r, "sp-east", t, rules))
        await numbers.tick(released + timedelta(hours=1))
    return released + rules.release_freeze


def test_rerating_a_call_of_a_past_holding_books_its_adjustment_on_that_holding(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store_url_of(config)
    rate(config, capsys)
    returned = asyncio.run(back_in_the_pool(url))
    change_tariffs(config, tariffs("v2", long_distance="0.20"))
    rate(config, capsys, "--rerate")

    _, ledger, usage = asyncio.run(books(url))
    assert ledger[-1].ref == "rerate:u2:1"
    assert ledger[-1].at == datetime(2026, 11, 5, 11, 0, tzinfo=SHANGHAI)  # u2's answer
    assert usage.balance == D("0.00")  # the holding since the number came back

    async def holdings() -> list[Holding]:
        async with opened_store(url) as store:
            return await store.holdings(NUMBER)

    assert asyncio.run(holdings()) == [
        Holding(None, None, D("-0.50")),
        Holding(returned, None, D("0.00")),
    ]


def with_minimum(text: str) -> str:
    """`text` with a 5.00 minimum monthly consumption, the account opened before November."""
    return text.replace(
        "    included_minutes: 2\n", "    included_minutes: 2\n    minimum_monthly: 5.00\n"
    ).replace("{package: office}", "{package: office, opened: 2026-10-01}")


def bill(config: Path, *args: str) -> None:
    month = ["--month", "2026-11", "--number", NUMBER, "--yes"]
    assert main(["bill", "--config", str(config), *month, *args]) == 0


def test_calls_of_a_closed_month_are_re_priced_only_once_it_is_reopened(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """November closed with 0.70 of calls topped up to its 5.00 minimum: a credit for its
    calls would leave it below the minimum, so they wait until the month is reopened, and
    closing it again tops the new price up to the minimum."""
    change_tariffs(config, with_minimum(tariffs("v1")))
    rate(config, capsys)
    bill(config, "--close")
    change_tariffs(config, with_minimum(tariffs("v2", long_distance="0.20")))

    out, _ = rate(config, capsys, "--rerate")
    cdrs, ledger, _ = asyncio.run(books(store_url_of(config)))
    assert out.splitlines()[-1] == (
        "priced 0, re-priced 0, unchanged 0, skipped 3 (month 2026-11 of 4000000008 closed: "
        "reopen it to re-price its calls, hotline400 bill --month 2026-11 --number "
        "4000000008 --reopen --by NAME --reason WHY: 2, no account in the tariffs: 1)"
    )
    assert money(cdrs)[1] == ("u2", "0.22", "0.60", "0.82", "office@v1")
    assert ledger_rows(ledger)[-1] == ("minimum_topup", "2026-11", "-4.30")

    bill(config, "--reopen", "--by", "ops", "--reason", "new long-distance rate")
    rate(config, capsys, "--rerate")
    bill(config, "--close")
    _, ledger, _ = asyncio.run(books(store_url_of(config)))
    assert ledger_rows(ledger)[-2:] == [  # by date: the adjustment is dated today
        ("minimum_topup", "2026-11#2", "-4.50"),
        ("adjustment", "rerate:u2:1", "0.20"),
    ]
    assert sum(entry.amount for entry in ledger) == D("-5.00")  # the minimum, no less
