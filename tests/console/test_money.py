"""The money page: features switched on and off by the account's administrators (the fee
booked in full the day a feature goes on, once a day, with an audit entry; tariffs.yaml
edited on that one line), and the current month's statement showing what closing it will
book as pending."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from console.security import hash_password
from dialplan.plan import NumberStatus
from numbering.lifecycle import NumberRecord, Status, reserve
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from rating.money import ZERO
from rating.tariff_loader import load_tariffs
from router.configuration.config_dir import load_config
from router.money.provider_accounts import provider_account
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.numbers.statuses import inventory_status
from router.numbers.ticking import settle_arrears
from router.storage.cdr import Outcome
from router.storage.console_rows import UserRow
from tests.conftest import UNWATCHED, HttpReceiver, warning_facts
from tests.console.harness import NOW, PASSWORD, SHOP, Site, a_call, csrf_of, running_console
from tests.console.test_numbers import LICENCE, POOL, PROVIDER, seed

SURVEY = "satisfaction_survey"
"""Off for the shop in the example tariffs; its fee is 30.00."""
SWITCH = f"/numbers/{SHOP}/money/features/{SURVEY}"


def _features(config_dir: Path) -> dict[str, str]:
    account = load_tariffs(config_dir / "tariffs.yaml").accounts[SHOP]
    return {name: str(day) for name, day in account.features.items()}


async def test_an_administrator_switches_a_feature_on_paying_its_fee_once_that_day(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        tariffs_file = site.config_dir / "tariffs.yaml"
        before = tariffs_file.read_text(encoding="utf-8")
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        page = await shop.get(f"/numbers/{SHOP}/money")
        assert f'data-testid="switch-{SURVEY}"' in page.text

        on = await shop.post(SWITCH, data={"csrf": token, "on": "1"})
        assert on.status_code == 303 and on.headers["location"] == f"/numbers/{SHOP}/money"
        assert _features(site.config_dir)[SURVEY] == "2026-11-24"
        fees = await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE)
        assert [(str(e.amount), e.ref) for e in fees] == [("-30.00", f"{SURVEY}@2026-11-24")]
        after = tariffs_file.read_text(encoding="utf-8")
        assert set(after.splitlines()) - set(before.splitlines()) == {f"      {SURVEY}: 2026-11-24"}
        assert set(before.splitlines()) <= set(after.splitlines())  # comments and all kept

        off = await shop.post(SWITCH, data={"csrf": token, "on": "0"})
        assert off.status_code == 303
        assert SURVEY not in _features(site.config_dir)
        assert tariffs_file.read_text(encoding="utf-8") == before
        await shop.post(SWITCH, data={"csrf": token, "on": "1"})  # again the same day
        fees = await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE)
        assert len(fees) == 1, "the same day's fee is booked once"

        page = await shop.get(f"/numbers/{SHOP}/money")
        assert f'data-testid="feature-{SURVEY}">on since 2026-11-24<' in page.text
        audit = (await shop.get("/audit")).text
        assert "switch feature on" in audit and "switch feature off" in audit
        assert "satisfaction survey: fee 30.00 yuan booked" in audit
        assert "satisfaction survey: fee 30.00 yuan already booked today" in audit
        await shop.aclose()


async def test_the_money_page_names_each_feature_in_words_not_by_its_tariff_key(
    tmp_path: Path,
) -> None:
    """A subscriber reads 'CRM screen pop', not screen_pop: the key is for tariffs.yaml."""
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        await shop.post(SWITCH, data={"csrf": token, "on": "1"})
        page = (await shop.get(f"/numbers/{SHOP}/money")).text
        table = page[page.index("<h2>Features</h2>") :]
        for name in ("IVR menu", "call recording", "satisfaction survey", "CRM screen pop"):
            assert f"<td>{name}<div" in table
        assert 'data-confirm="Switch IVR menu on?' not in table  # on already: no confirmation
        assert 'aria-label="satisfaction survey"' in table
        assert "satisfaction survey switched on 2026-11-24" in page  # the fee's ledger note
        for key in ("screen_pop", SURVEY):
            assert f">{key}<" not in page and f"{key} switched" not in page
        audit = (await shop.get("/audit")).text
        assert "satisfaction survey: fee 30.00 yuan booked" in audit
        await shop.aclose()


async def test_the_operator_switches_features_too_and_a_repeated_form_changes_nothing(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{SHOP}/money")
        for _ in range(2):
            response = await ops.post(
                f"/numbers/{SHOP}/money/features/recording", data={"csrf": token, "on": "0"}
            )
            assert response.status_code == 303
        assert "recording" not in _features(site.config_dir)
        audit = (await ops.get("/audit")).text
        assert audit.count("switch feature off") == 1
        assert await site.store.ledger(SHOP) == []
        await ops.aclose()


async def test_staff_a_missing_token_and_an_unknown_feature_switch_nothing(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        before = (site.config_dir / "tariffs.yaml").read_text(encoding="utf-8")
        staff = await site.signed_in("shopstaff")
        page = await staff.get(f"/numbers/{SHOP}/money")
        assert 'data-testid="switch-' not in page.text
        token = await csrf_of(staff, "/")
        assert (await staff.post(SWITCH, data={"csrf": token, "on": "1"})).status_code == 404
        shop = await site.signed_in("shop")
        assert (await shop.post(SWITCH, data={"on": "1"})).status_code == 403
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        unknown = await shop.post(
            f"/numbers/{SHOP}/money/features/teleportation", data={"csrf": token, "on": "1"}
        )
        assert unknown.status_code == 404
        assert (site.config_dir / "tariffs.yaml").read_text(encoding="utf-8") == before
        assert await site.store.ledger(SHOP) == []
        await staff.aclose()
        await shop.aclose()


async def test_the_current_months_statement_marks_what_closing_will_book_as_pending(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("shop.1", SHOP, NOW, Outcome.ANSWERED, seconds=120))
        shop = await site.signed_in("shop")
        page = (await shop.get(f"/numbers/{SHOP}/money")).text
        note = page[page.index('data-testid="pending-2026-11"') :]
        note = note[: note.index("</p>")]
        # nationwide-300: rent 300.00, minimum 500.00 against 0.20 of calls so far
        assert "rent <strong>300.00</strong>" in note
        assert "minimum-consumption top-up <strong>499.80</strong>" in note
        assert "open · 2 pending" in page
        assert page.count('class="num pending"') >= 2
        await shop.aclose()


async def test_a_statement_of_a_number_nobody_is_recorded_holding_names_no_holder(
    tmp_path: Path,
) -> None:
    """The shop's number has an account and a plan but is not in the inventory: its
    statements carry no holder line, not an empty one."""
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        page = (await ops.get(f"/numbers/{SHOP}/money")).text
        await ops.aclose()
    assert 'data-testid="pending-2026-11"' in page  # the statements are there
    assert 'data-testid="holder-' not in page


def _shop_prepaid(config_dir: Path) -> str:
    """tariffs.yaml with the shop's account prepaid (the example's is postpaid)."""
    tariffs_file = config_dir / "tariffs.yaml"
    text = tariffs_file.read_text(encoding="utf-8")
    shop_block = text.index(f'"{SHOP}":')
    prepaid = text[:shop_block] + text[shop_block:].replace("prepaid: false", "prepaid: true", 1)
    tariffs_file.write_text(prepaid, encoding="utf-8")
    return prepaid


async def test_a_prepaid_account_short_of_a_features_fee_is_refused_and_nothing_is_booked(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        tariffs_file = site.config_dir / "tariffs.yaml"
        prepaid = _shop_prepaid(site.config_dir)
        ops = await site.signed_in("ops")
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": await csrf_of(ops, "/"), "amount": "20.00", "ref": "r1"},
        )

        refused = await shop.post(SWITCH, data={"csrf": token, "on": "1"}, follow_redirects=True)
        assert (
            "satisfaction survey was not switched on: its fee is 30.00 yuan and the prepaid"
            " balance is 20.00 yuan. Top up at least 10.00 yuan"
        ) in refused.text
        assert SURVEY not in _features(site.config_dir)
        assert tariffs_file.read_text(encoding="utf-8") == prepaid
        assert await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE) == []
        audit_page = (await shop.get("/audit")).text
        assert "refused: switch feature on" in audit_page  # written down, and nothing else
        assert audit_page.count("switch feature on") == 1

        await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": await csrf_of(ops, "/"), "amount": "10.00", "ref": "r2"},
        )
        on = await shop.post(SWITCH, data={"csrf": token, "on": "1"})
        assert on.headers["location"] == f"/numbers/{SHOP}/money", "a balance equal to the fee pays"
        assert _features(site.config_dir)[SURVEY] == "2026-11-24"
        page = await shop.get(f"/numbers/{SHOP}/money")
        assert 'data-testid="balance">0.00<' in page.text
        await ops.aclose()
        await shop.aclose()


async def test_two_switches_at_once_cannot_both_spend_a_balance_that_pays_one_fee(
    tmp_path: Path,
) -> None:
    """Each switch checks the balance and books its fee holding tariffs.yaml: the second
    one sees the first one's fee gone and is refused for it (without the hold it found the
    file changed under it and was refused as a clash it could not explain)."""
    async with running_console(tmp_path) as site:
        _shop_prepaid(site.config_dir)
        pop = f"/numbers/{SHOP}/money/features/screen_pop"
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        await shop.post(pop, data={"csrf": token, "on": "0"})  # 50.00 to switch on again
        await site.store.post_ledger(
            [LedgerEntry(SHOP, NOW, Decimal("60.00"), LedgerKind.PAYMENT, "s1", "")]
        )  # pays the survey's 30.00 or screen pop's 50.00, not both
        await asyncio.gather(
            shop.post(SWITCH, data={"csrf": token, "on": "1"}),
            shop.post(pop, data={"csrf": token, "on": "1"}),
        )
        fees = await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE)
        switched_on = {SURVEY, "screen_pop"} & set(_features(site.config_dir))
        audit = (await shop.get("/audit")).text
        await shop.aclose()
    assert len(fees) == 1 and len(switched_on) == 1
    assert sum(-fee.amount for fee in fees) <= Decimal("60.00")
    assert "refused: switch feature on" in audit
    assert "the prepaid balance is" in audit  # refused for the balance, not a clash in the file


async def test_the_fee_of_a_number_a_provider_holds_needs_the_providers_balance(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        _shop_prepaid(site.config_dir)
        rules = NumberRules()
        await site.store.add_numbers([NumberRecord(SHOP, rules.grade(SHOP), ZERO)], NOW)
        record = await site.store.number_record(SHOP)
        assert record is not None
        await site.store.record_changes([reserve(record, "sp-east", NOW, rules)], None, [[]])
        provider = provider_account("sp-east")
        await site.store.post_ledger(
            [LedgerEntry(provider, NOW, Decimal("25.00"), LedgerKind.PAYMENT, "p1", "")]
        )
        await site.store.post_ledger(
            [LedgerEntry(SHOP, NOW, Decimal("500.00"), LedgerKind.PAYMENT, "s1", "")]
        )  # the number's own balance does not pay the provider's deduction
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        refused = await shop.post(SWITCH, data={"csrf": token, "on": "1"}, follow_redirects=True)
        assert "service provider sp-east&#39;s balance is 25.00 yuan" in refused.text
        assert await site.store.ledger(provider, kind=LedgerKind.FEATURE_FEE) == []
        await site.store.post_ledger(
            [LedgerEntry(provider, NOW, Decimal("5.00"), LedgerKind.PAYMENT, "p2", "")]
        )
        await shop.post(SWITCH, data={"csrf": token, "on": "1"})
        fees = await site.store.ledger(provider, kind=LedgerKind.FEATURE_FEE)
        assert [str(e.amount) for e in fees] == ["-30.00"]
        await shop.aclose()


async def test_a_features_fee_taking_a_prepaid_balance_below_its_threshold_warns_once(
    tmp_path: Path,
) -> None:
    """The shop, made prepaid (warned under 50.00; its plan asks for the text message),
    has 70.00: the survey's 30.00 takes it to 40.00. Switched off and on again the same
    day, the fee is booked already and nothing more is said."""
    async with HttpReceiver() as receiver, running_console(tmp_path) as site:
        _shop_prepaid(site.config_dir)
        with (site.config_dir / "router.yaml").open("a", encoding="utf-8") as router_yaml:
            router_yaml.write(f"low_balance_webhook: {receiver.url}\nsms_gateway: {receiver.url}\n")
        await site.store.post_ledger(
            [LedgerEntry(SHOP, NOW, Decimal("70.00"), LedgerKind.PAYMENT, "s1", "")]
        )
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        for on in ("1", "0", "1"):
            await shop.post(SWITCH, data={"csrf": token, "on": on})
        await shop.aclose()
    text, warning = sorted((json.loads(r.body) for r in receiver.received), key=len)
    assert [text, warning_facts(warning)] == [
        {
            "to": "13801650001",
            "text": f"{SHOP} 预付余额 40.00 元，已低于提醒值 50.00 元，请及时充值。",
        },
        {"event": "low_balance", "number": SHOP, "balance": "40.00", "threshold": "50.00"},
    ]


async def test_a_payment_the_operator_books_that_clears_arrears_puts_the_number_back_in_service(
    tmp_path: Path,
) -> None:
    """As `account topup` does: the number connects calls again at once, not at the next
    numbers tick of the daemon."""
    async with running_console(tmp_path) as site:
        _shop_prepaid(site.config_dir)
        await seed(site.store, site.config_dir, held_by_shop=True)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        await settle_arrears(inventory, config.tariffs, NOW - timedelta(hours=1))
        records = await site.store.number_records([SHOP])
        assert records[SHOP].status is Status.ARREARS  # its opening fee took it below zero
        ops = await site.signed_in("ops")
        await ops.post(
            f"/numbers/{SHOP}/money/payments",
            data={"csrf": await csrf_of(ops, "/"), "amount": "5000.00", "ref": "bank-7"},
        )
        record = (await site.store.number_records([SHOP]))[SHOP]
        on_calls = inventory_status(record, NOW, config.number_rules).on_calls
        assert (record.status, record.since, on_calls) == (Status.ACTIVE, NOW, NumberStatus.ACTIVE)
        await ops.aclose()


def drop_factory_account(config_dir: Path) -> None:
    """Take 4006001234's account out of the example tariffs.yaml: a number with a plan and
    no account."""
    tariffs = config_dir / "tariffs.yaml"
    text = tariffs.read_text(encoding="utf-8")
    account = re.search(r'^  "4006001234":.*?(?=^  "4)', text, re.M | re.S)
    assert account, "the factory's account in the example tariffs"
    tariffs.write_text(text.replace(account.group(0), ""), encoding="utf-8")


async def test_a_number_without_an_account_is_not_called_prepaid(tmp_path: Path) -> None:
    """A number with a plan but no account in tariffs.yaml has no package and no terms: its
    money page says so, not that it is prepaid."""
    async with running_console(tmp_path) as site:
        drop_factory_account(site.config_dir)
        ops = await site.signed_in("ops")
        page = (await ops.get("/numbers/4006001234/money")).text
        package = re.search(r'<div class="label">Package</div>(.*?)</section>', page, re.S)
        assert package, "no package tile"
        said = re.sub(r"<[^>]+>", " ", package.group(1)).split()
        assert "prepaid" not in said and "no account in tariffs.yaml" in " ".join(said)
        await ops.aclose()


async def test_money_a_number_without_an_account_owes_is_marked_as_owed(tmp_path: Path) -> None:
    """A negative balance with no account to bill it (an opening fee not paid) is money
    owed: the money page and the dashboard mark it as they mark a low prepaid balance. A
    postpaid account's balance spent is its terms' to bill, and is not marked."""
    async with running_console(tmp_path) as site:
        drop_factory_account(site.config_dir)
        await site.store.post_ledger(
            [
                LedgerEntry("4006001234", NOW, Decimal("-600.00"), LedgerKind.OPENING_FEE, "o1"),
                LedgerEntry(SHOP, NOW, Decimal("-50.00"), LedgerKind.ADJUSTMENT, "a1"),
            ]
        )
        ops = await site.signed_in("ops")
        page = (await ops.get("/numbers/4006001234/money")).text
        assert '<div class="tile bad"><div class="label">Balance</div>' in page
        assert 'data-testid="owed">owed<' in page
        shop = (await ops.get(f"/numbers/{SHOP}/money")).text
        assert "-50.00" in shop and 'data-testid="owed"' not in shop
        assert '<div class="tile bad"><div class="label">Balance</div>' not in shop
        dashboard = (await ops.get("/")).text
        factory_row = dashboard.split('href="/numbers/4006001234/money"')[1].split("</tr>")[0]
        shop_row = dashboard.split(f'href="/numbers/{SHOP}/money"')[1].split("</tr>")[0]
        assert ">owed</span>" in factory_row and "owed" not in shop_row
        await ops.aclose()


async def test_an_inventory_number_without_an_account_shows_its_fees_and_no_package(
    tmp_path: Path,
) -> None:
    """A number applied for through the inventory that has neither plan nor account in
    tariffs.yaml owes its opening fee all the same: the operator sees it on the money page,
    which says under Package that it has no account in tariffs.yaml, as `account show` does,
    reached from the number's page, and books the payment that settles it there."""
    number = POOL[0]
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        assert number not in config.plans and number not in config.tariffs.accounts
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        day_ago = NOW - timedelta(days=1)
        await desk.reserve(inventory, number, PROVIDER, day_ago)
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        await desk.apply(inventory, number, "shopco", day_ago, material=material)
        ops = await site.signed_in("ops")
        response = await ops.get(f"/numbers/{number}/money")
        assert response.status_code == 200
        page = response.text
        package = re.search(r'<div class="label">Package</div>(.*?)</section>', page, re.S)
        assert package, "no package tile"
        assert "no account in tariffs.yaml" in " ".join(
            re.sub(r"<[^>]+>", " ", package.group(1)).split()
        )
        balance = sum((e.amount for e in await site.store.ledger(number)), ZERO)
        assert balance < ZERO
        assert f'data-testid="balance">{balance}<' in page
        assert "opening fee" in page
        number_page = (await ops.get(f"/numbers/{number}")).text
        assert f'href="/numbers/{number}/money"' in number_page, "the number's page links to it"
        paid = await ops.post(
            f"/numbers/{number}/money/payments",
            data={"csrf": await csrf_of(ops, "/"), "amount": str(-balance), "ref": "bank-9"},
        )
        assert paid.status_code == 303
        assert sum((e.amount for e in await site.store.ledger(number)), ZERO) == ZERO
        nowhere = await ops.get("/numbers/4009999999/money")
        assert nowhere.status_code == 404, "a number of no plan, account or inventory record"
        await ops.aclose()


async def _held_without_an_account(site: Site, number: str, subscriber: str) -> None:
    """`number` applied for by `subscriber` a day ago through the inventory, with neither a
    plan nor a tariffs.yaml account: its opening and selection fees are on its ledger."""
    config = load_config(site.config_dir)
    assert number not in config.plans and number not in config.tariffs.accounts
    inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
    day_ago = NOW - timedelta(days=1)
    await desk.reserve(inventory, number, PROVIDER, day_ago)
    material = desk.Material(LICENCE, "Li Si", "110***********1234")
    await desk.apply(inventory, number, subscriber, day_ago, material=material)


async def _add_users(site: Site, *users: tuple[str, str, str]) -> None:
    digest = hash_password(PASSWORD)
    for name, role, account in users:
        await site.store.add_user(UserRow(name, role, account, digest, False, NOW))


async def test_the_users_of_a_number_without_an_account_see_its_money_as_an_accounts_users_do(
    tmp_path: Path,
) -> None:
    """A user whose account is a number the inventory keeps without a tariffs.yaml account
    reads its money page as a user of an account's number reads that one's: its balance
    and the fees booked (no package, no statements, no features: it has no account). The
    number's page links to it. Only the operator books a payment; the routing and reports
    of a number without a plan are no page of anyone's, so the money page does not link
    to them. Another subscriber's users, and the holder's users not bound to the number
    (as for a number with an account), are told it is not found."""
    number = POOL[0]
    money = f"/numbers/{number}/money"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        await _held_without_an_account(site, number, "numco")
        await _add_users(
            site,
            ("num-admin", "subscriber-admin", number),
            ("num-staff", "subscriber-staff", number),
            ("numco", "subscriber-admin", "numco"),
            ("otherco", "subscriber-admin", "otherco"),
        )
        balance = sum((e.amount for e in await site.store.ledger(number)), ZERO)
        assert balance < ZERO
        for name in ("num-admin", "num-staff"):
            user = await site.signed_in(name)
            response = await user.get(money)
            assert response.status_code == 200, name
            page = response.text
            assert f'data-testid="balance">{balance}<' in page
            assert "opening fee" in page and "selection fee" in page
            package = re.search(r'<div class="label">Package</div>(.*?)</section>', page, re.S)
            assert package and "no account in tariffs.yaml" in " ".join(
                re.sub(r"<[^>]+>", " ", package.group(1)).split()
            )
            assert f"{money}/payments" not in page, "only the operator books payments"
            features = re.search(r'data-testid="no-features">(.*?)<', page)
            assert features and features.group(1) == (
                "No account in tariffs.yaml for this number: no features to switch."
            ), "the tariffs have features; the number has no account to switch them in"
            assert "A feature's fee is deducted" not in page
            assert f'href="/numbers/{number}/routing"' not in page
            assert f'href="/reports?number={number}"' not in page
            number_page = (await user.get(f"/numbers/{number}")).text
            assert f'href="{money}"' in number_page, name
            assert f'href="/numbers/{number}/routing"' not in number_page
            paid = await user.post(
                f"{money}/payments",
                data={"csrf": await csrf_of(user, money), "amount": "600.00", "ref": "own-1"},
            )
            assert paid.status_code == 404, name
            await user.aclose()
        assert sum((e.amount for e in await site.store.ledger(number)), ZERO) == balance

        for name in ("clinic", "otherco", "numco"):
            user = await site.signed_in(name)
            response = await user.get(money)
            assert response.status_code == 404, name
            assert str(balance) not in response.text
            assert f'href="{money}"' not in (await user.get(f"/numbers/{number}")).text
            await user.aclose()


async def test_the_users_of_a_number_without_an_account_see_its_current_holdings_money_only(
    tmp_path: Path,
) -> None:
    """oldco held the number, paid for it after asking to cancel, and it came back to the
    pool; newco applied for it: the number's user sees newco's fees and balance, not
    oldco's payment, which the operator still sees."""
    number = POOL[1]
    money = f"/numbers/{number}/money"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        material = desk.Material(LICENCE, "Li Si", "110***********1234")
        first = NOW - timedelta(days=150)  # in service after its review; 30 days' notice and
        # 90 frozen after its cancellation: back in the pool about 24 days ago
        await desk.reserve(inventory, number, PROVIDER, first)
        await desk.apply(inventory, number, "oldco", first, material=material)
        await desk.act(inventory, number, "cancel", "ops", first + timedelta(days=6))
        await site.store.post_ledger(
            [
                LedgerEntry(
                    number,
                    NOW - timedelta(days=60),
                    Decimal("77.00"),
                    LedgerKind.PAYMENT,
                    "oldco-late",
                    "",
                )
            ]
        )
        await _held_without_an_account(site, number, "newco")
        await _add_users(site, ("num-admin", "subscriber-admin", number))
        user = await site.signed_in("num-admin")
        page = (await user.get(money)).text
        entries = page[page.index("<h2>Payments and fees</h2>") :]
        assert "oldco-late" not in entries and "77.00" not in entries
        assert "opening fee" in entries
        newco_fees = [e for e in await site.store.ledger(number) if e.at >= NOW - timedelta(days=1)]
        assert f'data-testid="balance">{sum((e.amount for e in newco_fees), ZERO)}<' in page
        ops = await site.signed_in("ops")
        assert "oldco-late" in (await ops.get(money)).text
        await user.aclose()
        await ops.aclose()
