"""`hotline400 account topup | show | fees` on each store engine: a SQLite file and PostgreSQL.

Accounts: 4000000008 (prepaid, package `office`: 10 included minutes, 0.10/min, warning
under 50.00, recording switched on 2026-11-05) and 4000000009 (postpaid, same package, IVR
and recording switched on 2026-11-05, screen pop on 2026-11-06).
"""

import asyncio
import re
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dialplan.calendar import OfficialCalendar
from numbering import lifecycle
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules, Timing
from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.numbers.inventory import Inventory
from router.storage.cdr import PostLedger
from router.storage.number_rows import PartyRow
from router.storage.protocol import Store
from tests.conftest import UNWATCHED, opened_store, store_url_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
PREPAID, POSTPAID = "4000000008", "4000000009"
D = Decimal

TARIFFS = """\
caller_tariffs:
  fixed: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
  mobile: {per_seconds: 60, charge: 0.15}
  other: {first_seconds: 180, first_charge: 0.22, per_seconds: 60, charge: 0.11}
features:
  recording: 100.00
  ivr: 200.00
  screen_pop: 50.00
packages:
  office:
    monthly_rent: 50.00
    included_minutes: 10
    nationwide: {per_seconds: 60, charge: 0.10}
    minimum_monthly: 20.00
accounts:
  "4000000008":
    package: office
    features: {recording: 2026-11-05}
  "4000000009":
    package: office
    prepaid: false
    features: {ivr: 2026-11-05, recording: 2026-11-05, screen_pop: 2026-11-06}
"""


@pytest.fixture
def config(tmp_path: Path, store_url: str) -> Path:
    config = tmp_path / "config"
    config.mkdir()
    (config / "router.yaml").write_text(f'store: "{store_url}"\n', encoding="utf-8")
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")
    return config


async def write(url: str, entries: list[tuple[LedgerEntry, int]]) -> None:
    async with opened_store(url) as store:
        await store.apply([PostLedger(entry, included) for entry, included in entries])


async def read_ledger(url: str, number: str) -> list[LedgerEntry]:
    async with opened_store(url) as store:
        return await store.ledger(number)


def ledger_of(config: Path, number: str = PREPAID) -> list[LedgerEntry]:
    return ledger_of_url(store_url_of(config), number)


def ledger_of_url(url: str, number: str = PREPAID) -> list[LedgerEntry]:
    return asyncio.run(read_ledger(url, number))


def account(config: Path, capsys: pytest.CaptureFixture[str], *args: str, status: int = 0) -> str:
    capsys.readouterr()
    action, *rest = args
    assert main(["account", action, "--config", str(config), *rest]) == status
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_a_top_up_books_a_payment_under_its_receipt(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = account(
        config,
        capsys,
        "topup",
        "--number",
        PREPAID,
        "--amount",
        "600",
        "--ref",
        "R-1",
        "--at",
        "2026-11-02 09:30",
    )
    [entry] = ledger_of(config)
    assert output == "booked payment 600.00 to 4000000008 (ref R-1); balance 600.00\n"
    assert (entry.kind, entry.amount, entry.ref, entry.at) == (
        LedgerKind.PAYMENT,
        D("600.00"),
        "R-1",
        datetime(2026, 11, 2, 9, 30, tzinfo=SHANGHAI),
    )


def test_top_ups_without_a_receipt_get_unique_refs(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    account(config, capsys, "topup", "--number", PREPAID, "--amount", "10.50")
    second = account(config, capsys, "topup", "--number", PREPAID, "--amount", "10.50")
    refs = [entry.ref for entry in ledger_of(config)]
    assert len(set(refs)) == 2
    assert all(re.fullmatch(r"topup-[0-9a-f]{32}", ref) for ref in refs)
    assert second.endswith("balance 21.00\n")


def test_the_same_receipt_is_booked_once_and_never_with_another_amount(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topup = ("topup", "--number", PREPAID, "--ref", "R-2", "--amount")
    account(config, capsys, *topup, "100.00")
    again = account(config, capsys, *topup, "100.00")
    other = account(config, capsys, *topup, "200.00", status=1)
    assert again == "payment R-2 of 100.00 to 4000000008 was booked before; balance 100.00\n"
    assert "ref R-2 is already a payment of 100.00 to 4000000008" in other
    assert [entry.amount for entry in ledger_of(config)] == [D("100.00")]


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.005", "abc", "NaN", "1e40"])
def test_a_top_up_must_be_a_positive_amount_in_fen(
    config: Path, capsys: pytest.CaptureFixture[str], amount: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["account", "topup", "--config", str(config), "--number", PREPAID, f"--amount={amount}"]
        )
    assert exit_info.value.code == 2
    assert ledger_of(config) == []


def test_a_number_without_an_account_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = account(config, capsys, "topup", "--number", "4000000001", "--amount", "5", status=1)
    assert "4000000001 has no account in tariffs.yaml" in output


def test_show_tells_balance_usage_included_minutes_and_package(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def entry(day: int, amount: str, kind: LedgerKind, ref: str) -> LedgerEntry:
        when = datetime(2026, 11, day, 10, tzinfo=SHANGHAI)
        return LedgerEntry(PREPAID, when, D(amount), kind, ref)

    asyncio.run(
        write(
            store_url_of(config),
            [
                (entry(1, "60.00", LedgerKind.PAYMENT, "R-3"), 0),
                (entry(20, "0.00", LedgerKind.CALL, "c1"), 300),  # 5 min, all included
                (entry(23, "-0.30", LedgerKind.CALL, "c2"), 300),  # 8 min: 5 included
                (entry(23, "-12.00", LedgerKind.CALL, "c3"), 0),
            ],
        )
    )
    output = account(config, capsys, "show", "--number", PREPAID, "--today", "2026-11-23")
    assert output.splitlines() == [
        "4000000008",
        "  package               office (prepaid)",
        "  balance               47.70",
        "  low-balance warning   50.00  (balance is below it)",
        "  this month 2026-11    3 call(s), cost 12.30",
        "  today 2026-11-23      2 call(s), cost 12.30",
        "  included minutes      10.00 of 10 used, 0.00 left",
        "  minimum monthly       20.00 (package's) at 0.10/min",
        "  monthly rent          50.00",
        "  features              call recording since 2026-11-05",
    ]


def test_show_of_a_postpaid_account_without_entries(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = account(config, capsys, "show", "--number", POSTPAID, "--today", "2026-12-01")
    assert "  balance               0.00" in output
    assert "  low-balance warning   50.00  (postpaid: not applied)" in output
    assert "  this month 2026-12    0 call(s), cost 0.00" in output
    assert "  included minutes      0.00 of 10 used, 10.00 left" in output


AT_ONCE = NumberRules(
    timing=Timing(cancellation_notice_days=0, cancelled_freeze_days=0, review_min_working_days=0)
)


async def held_then_pooled(store: Store, subscriber: str, provider: str, day: int) -> None:
    """`subscriber` of `provider` takes 4000000008 on `day` of December 2026 (its opening fee,
    600.00, left unpaid) and gives it back to the pool that evening."""
    inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
    calendar = OfficialCalendar()
    for hour, action in (
        (9, lambda r, t: lifecycle.reserve(r, provider, t, AT_ONCE)),
        (10, lambda r, t: lifecycle.apply(r, subscriber, provider, t, AT_ONCE)),
        (10, lambda r, t: lifecycle.submit(r, t, AT_ONCE, calendar)),
        (11, lambda r, t: lifecycle.approve(r, "ops", t, AT_ONCE, calendar)),
        (18, lambda r, t: lifecycle.cancel(r, "ops", t, AT_ONCE)),
        (18, None),  # the freeze of no length runs out: back in the pool
    ):
        await inventory.act(PREPAID, datetime(2026, 12, day, hour, tzinfo=SHANGHAI), action)


async def three_past_holders(url: str) -> None:
    """alpha (of sp-east in the subscribers' register), then beta (of sp-west), then gamma
    (held the number through sp-east without being registered) each held 4000000008 and
    left it 600.00 in debt."""
    async with opened_store(url) as store:
        registered = datetime(2026, 11, 1, tzinfo=SHANGHAI)
        for name, provider in (("sp-east", None), ("sp-west", None)):
            await store.add_party(PartyRow(name, name.upper(), "", "", "", registered, provider))
        for name, provider in (("alpha", "sp-east"), ("beta", "sp-west")):
            await store.add_party(PartyRow(name, name.upper(), "", "", "", registered, provider))
        await store.add_numbers([NumberRecord(PREPAID)], registered)
        for day, (name, provider) in enumerate(
            (("alpha", "sp-east"), ("beta", "sp-west"), ("gamma", "sp-east")), start=1
        ):
            await held_then_pooled(store, name, provider, day)


def test_show_names_each_past_holder_with_its_service_provider(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like a statement, each past holding names its holder and the service provider the
    subscribers' register gives it; a holder the register does not know is named alone."""
    asyncio.run(three_past_holders(store_url_of(config)))
    output = account(config, capsys, "show", "--number", PREPAID, "--today", "2026-12-05")
    assert [line for line in output.splitlines() if "past holding" in line] == [
        "  past holding          until 2026-12-01 18:00, alpha (provider sp-east) owes 600.00",
        "  past holding          from 2026-12-01 18:00 until 2026-12-02 18:00, "
        "beta (provider sp-west) owes 600.00",
        "  past holding          from 2026-12-02 18:00 until 2026-12-03 18:00, gamma owes 600.00",
    ]


def test_show_of_a_subscriber_names_its_service_provider(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(three_past_holders(store_url_of(config)))
    output = account(config, capsys, "show", "--subscriber", "beta")
    assert output.splitlines() == [
        "subscriber beta (provider sp-west)",
        f"  {PREPAID}  from 2026-12-01 18:00 until 2026-12-02 18:00  owes 600.00",
        "  left on past holdings -600.00",
    ]


UNPRICED = "4008000888"
"""A premium number of the inventory, with no account in tariffs.yaml and no plan."""


async def applied_for_without_an_account(url: str) -> None:
    """acme, through sp-east, applies for 4008000888 on 2026-12-02: its opening fee (600.00)
    and its selection fee (300.00) are booked on its ledger, unpaid."""
    async with opened_store(url) as store:
        registered = datetime(2026, 11, 1, tzinfo=SHANGHAI)
        await store.add_numbers(
            [NumberRecord(UNPRICED, grade="premium", selection_fee=D("300.00"))], registered
        )
        inventory = Inventory(store, AT_ONCE, OfficialCalendar(), UNWATCHED)
        for hour, action in (
            (9, lambda r, t: lifecycle.reserve(r, "sp-east", t, AT_ONCE)),
            (10, lambda r, t: lifecycle.apply(r, "acme", "sp-east", t, AT_ONCE)),
        ):
            await inventory.act(UNPRICED, datetime(2026, 12, 2, hour, tzinfo=SHANGHAI), action)


def test_show_of_an_inventory_number_without_an_account_tells_its_debt_and_missing_package(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A number taken through the inventory before tariffs.yaml gives it an account owes its
    fees all the same: shown with its holder, balance and entries, and said to have no
    package, so that its calls are not priced until an account is added."""
    asyncio.run(applied_for_without_an_account(store_url_of(config)))

    output = account(config, capsys, "show", "--number", UNPRICED, "--today", "2026-12-05")

    assert output.splitlines() == [
        UNPRICED,
        "  number                applied in the inventory",
        "  subscriber            acme",
        "  service provider      sp-east, balance 0.00",
        "  package               none: no account in tariffs.yaml (its calls are not priced "
        "until one is added)",
        "  balance               -900.00",
        "  2026-12-02 10:00     -600.00  opening_fee opening@20261202T100000v1  opening fee",
        "  2026-12-02 10:00     -300.00  selection_fee selection@20261202T100000v1  "
        "selection fee, premium number",
    ]


def test_show_refuses_a_number_of_no_plan_no_account_and_no_inventory_record(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = account(config, capsys, "show", "--number", UNPRICED, status=1)
    assert output == (
        f"{UNPRICED} has no account in tariffs.yaml (accounts: {PREPAID}, {POSTPAID})\n"
    )


def test_a_top_up_pays_the_fees_of_an_inventory_number_without_an_account(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its opening and selection fees are owed all the same, so its holder's payment is
    booked on its ledger, as on the console's money page, and booked once per receipt. No
    package: no warning threshold, no arrears to settle, its status stays as it was."""
    url = store_url_of(config)
    asyncio.run(applied_for_without_an_account(url))
    topup = ("topup", "--number", UNPRICED, "--ref", "R-900", "--amount")

    output = account(config, capsys, *topup, "500.00", "--at", "2026-12-03 09:00")
    again = account(config, capsys, *topup, "500.00")

    assert output == f"booked payment 500.00 to {UNPRICED} (ref R-900); balance -400.00\n"
    assert again == f"payment R-900 of 500.00 to {UNPRICED} was booked before; balance -400.00\n"
    payments = [e for e in ledger_of_url(url, UNPRICED) if e.kind is LedgerKind.PAYMENT]
    assert [(e.amount, e.ref, e.at) for e in payments] == [
        (D("500.00"), "R-900", datetime(2026, 12, 3, 9, tzinfo=SHANGHAI))
    ]
    show = account(config, capsys, "show", "--number", UNPRICED, "--today", "2026-12-05")
    assert "  number                applied in the inventory\n" in show
    assert "  balance               -400.00\n" in show


def test_a_top_up_refuses_a_number_of_no_plan_no_account_and_no_inventory_record(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = account(config, capsys, "topup", "--number", UNPRICED, "--amount", "5", status=1)
    assert output == (
        f"{UNPRICED} has no account in tariffs.yaml (accounts: {PREPAID}, {POSTPAID})\n"
    )
    assert ledger_of(config, UNPRICED) == []


def set_tariffs(config: Path, old: str, new: str) -> None:
    tariffs = config / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    assert old in text
    tariffs.write_text(text.replace(old, new), encoding="utf-8")


def test_terms_are_recorded_when_they_change_and_shown_as_a_history(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = ("terms", "--number", PREPAID, "--record", "--day")
    before = account(config, capsys, "terms", "--number", PREPAID)
    assert before.splitlines() == [
        PREPAID,
        "  nothing recorded; tariffs.yaml gives minimum 20.00 at 0.10/min (office)",
    ]
    first = account(config, capsys, *record, "2026-11-01")
    assert (
        first == f"{PREPAID}  from 2026-11-01  minimum 20.00 at 0.10/min (office)  first recorded\n"
    )
    assert account(config, capsys, *record, "2026-11-02") == f"unchanged: {PREPAID}\n"
    set_tariffs(config, "minimum_monthly: 20.00", "minimum_monthly: 30.00")
    account(config, capsys, *record, "2026-12-01")

    history = account(config, capsys, "terms", "--number", PREPAID)

    lines = history.splitlines()
    assert lines[0] == PREPAID
    assert re.fullmatch(
        r"  from 2026-11-01  minimum 20.00 at 0.10/min \(office\)  \(first recorded; "
        r"recorded \d{4}-\d\d-\d\d \d\d:\d\d\)",
        lines[1],
    )
    assert lines[2].startswith(
        "  from 2026-12-01  minimum 30.00 at 0.10/min (office)  "
        "(changed from minimum 20.00 at 0.10/min (office); recorded "
    )
    assert len(lines) == 3


def test_recording_terms_that_lower_a_minimum_against_the_rule_records_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store's history is what a change is checked against, whatever file came before:
    4000000008 names no opening day, so it is taken as in use and keeps its minimum."""
    account(config, capsys, "terms", "--record", "--day", "2026-11-01")
    set_tariffs(config, "charge: 0.10}", "charge: 0.05}")
    set_tariffs(config, "minimum_monthly: 20.00", "minimum_monthly: 10.00")

    refused = account(config, capsys, "terms", "--record", "--day", "2026-12-01", status=1)

    assert refused.splitlines() == [
        f"{number}: minimum monthly consumption 20.00 -> 10.00 refused: a number already in "
        "use keeps its minimum (in use (its account names no opening day); "
        "rate 0.10/min -> 0.05/min)"
        for number in (PREPAID, POSTPAID)
    ] + ["nothing recorded: 2 refused change(s)"]
    shown = account(config, capsys, "terms", "--number", POSTPAID)
    assert "tariffs.yaml now gives minimum 10.00 at 0.05/min (office): not recorded" in shown


def test_recording_terms_lets_a_number_not_yet_in_use_follow_its_lower_rate(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_tariffs(config, '"4000000009":\n', '"4000000009":\n    opened: 2027-01-01\n')
    account(config, capsys, "terms", "--number", POSTPAID, "--record", "--day", "2026-11-01")
    set_tariffs(config, "charge: 0.10}", "charge: 0.05}")
    set_tariffs(config, "minimum_monthly: 20.00", "minimum_monthly: 10.00")

    recorded = account(
        config, capsys, "terms", "--number", POSTPAID, "--record", "--day", "2026-12-01"
    )

    assert recorded == (
        f"{POSTPAID}  from 2026-12-01  minimum 10.00 at 0.05/min (office)  "
        "changed from minimum 20.00 at 0.10/min (office)\n"
    )


def test_fees_books_the_features_switched_on_that_day_for_every_account_once(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = account(config, capsys, "fees", "--day", "2026-11-05")
    second = account(config, capsys, "fees", "--day", "2026-11-05")
    assert first.splitlines() == [
        "4000000008  recording@2026-11-05                100.00  booked",
        "4000000009  ivr@2026-11-05                      200.00  booked",
        "4000000009  recording@2026-11-05                100.00  booked",
        "feature fees of 2026-11-05: 400.00 booked",
    ]
    assert second.splitlines()[-1] == "feature fees of 2026-11-05: 0.00 booked"
    assert second.count("booked before") == 3
    fees = [(e.ref, e.amount, e.at) for e in ledger_of(config, POSTPAID)]
    midnight = datetime(2026, 11, 5, tzinfo=SHANGHAI)
    assert fees == [
        ("ivr@2026-11-05", D("-200.00"), midnight),
        ("recording@2026-11-05", D("-100.00"), midnight),
    ]


def test_fees_on_a_day_no_feature_was_switched_on_book_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert account(config, capsys, "fees", "--day", "2026-11-07") == (
        "no feature was switched on 2026-11-07\n"
    )


def test_a_sqlite_file_that_does_not_exist_is_reported_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "elsewhere"
    config.mkdir()
    missing = tmp_path / "nowhere" / "hotline400.db"
    (config / "router.yaml").write_text(f'database: "{missing}"\n', encoding="utf-8")
    (config / "tariffs.yaml").write_text(TARIFFS, encoding="utf-8")

    output = account(config, capsys, "show", "--number", PREPAID, status=1)
    assert f"the database {missing} does not exist (router.yaml database: {missing}" in output
    assert not missing.exists()


def test_the_environment_names_the_store_the_routers_share(
    config: Path,
    store_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HOTLINE400_STORE wins over router.yaml, for the commands as for the routers."""
    (config / "router.yaml").write_text('database: "no-such-dir/hotline400.db"\n', encoding="utf-8")
    monkeypatch.setenv("HOTLINE400_STORE", store_url)

    account(config, capsys, "topup", "--number", PREPAID, "--amount", "8", "--ref", "R-8")
    assert [entry.ref for entry in ledger_of_url(store_url)] == ["R-8"]


def test_an_unreachable_store_is_named_in_one_line_without_its_password(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    closed_port = "postgresql://cashier:secret@127.0.0.1:1/hotline400?connect_timeout=1"
    (config / "router.yaml").write_text(f'store: "{closed_port}"\n', encoding="utf-8")

    output = account(config, capsys, "show", "--number", PREPAID, status=1)
    [line] = output.splitlines()
    assert line.startswith("cannot use the store postgresql://cashier:***@127.0.0.1:1/hotline400")
    assert "secret" not in output
