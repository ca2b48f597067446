"""The console's Numbers pages: the operator searches the inventory and takes a number through
its life from its page, by the same rules as `hotline400 numbers`; refusals change nothing;
every change is audited; a subscriber sees the numbers it holds and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx

from console.security import hash_password
from numbering.lifecycle import NumberRecord, Status
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.configuration.config_dir import load_config
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.storage.console_rows import UserRow
from router.storage.location import ConfiguredStore
from router.storage.number_rows import PartyRow
from tests.conftest import UNWATCHED, HttpReceiver, warning_facts
from tests.console.harness import (
    CLINIC,
    NOW,
    PASSWORD,
    SHANGHAI,
    SHOP,
    csrf_of,
    running_console,
)

RULES = NumberRules()
POOL = [f"40088880{n:02d}" for n in range(40)] + ["4006172839", "4001357924"]
PROVIDER = "sp-east"
LICENCE = "91110000100000000R"


async def seed(
    store: ConfiguredStore, site_config: Path | None = None, held_by_shop: bool = False
) -> None:
    """The pool above and one service provider; SHOP held by subscriber 'shopco' if asked."""
    numbers = [*POOL, SHOP, CLINIC]
    records = [NumberRecord(n, RULES.grade(n), RULES.fee_of_grade[RULES.grade(n)]) for n in numbers]
    await store.add_numbers(records, NOW - timedelta(days=1))
    await store.add_party(PartyRow(PROVIDER, "East Telecom Reseller", "", "", "", NOW))
    if held_by_shop:  # taken through its life a week ago, as an operator would
        assert site_config is not None
        config = load_config(site_config)
        inventory = Inventory(store, config.number_rules, config.calendar, UNWATCHED)
        week_ago = NOW - timedelta(days=7)
        await desk.reserve(inventory, SHOP, PROVIDER, week_ago)
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        await desk.apply(inventory, SHOP, "shopco", week_ago, material=material)
        await inventory.act(SHOP, NOW - timedelta(days=1), None)  # reviewed: in service


class Clock:
    """The console's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_the_operator_searches_by_segment_digits_grade_and_status(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        page = await ops.get("/numbers", params={"segment": "4008", "pattern": "8888"})
        assert page.status_code == 200
        assert "400-888-8000" in page.text and "400-617-2839" not in page.text
        premium = await ops.get("/numbers", params={"grade": "premium", "status": "available"})
        assert "400-888-8000" in premium.text and "400-135-7924" not in premium.text
        bad = await ops.get("/numbers", params={"segment": "40x8", "pattern": "88a"})
        assert "40x8 is not a segment like 4008" in bad.text
        assert "88a is not a pattern of 1 to 10 digits" in bad.text
        assert "400-888-8000" not in bad.text
        await ops.aclose()


async def test_the_operator_takes_a_number_from_the_pool_into_service(tmp_path: Path) -> None:
    clock = Clock(NOW)
    number = "4006172839"
    async with running_console(tmp_path, clock=clock) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{number}")

        async def post(action: str, **fields: str) -> int:
            response = await ops.post(
                f"/numbers/{number}/actions/{action}", data={"csrf": token, **fields}
            )
            return response.status_code

        assert await post("reserve", provider=PROVIDER) == 303
        material = {"licence": LICENCE, "legal_rep": "Zhang San", "id_number": "110101199003071233"}
        assert await post("apply", subscriber="acme", full_name="Acme Ltd", **material) == 303
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.UNDER_REVIEW
        assert record.subscriber == "acme" and record.provider == PROVIDER
        listed = (await ops.get("/numbers", params={"holder": "acme"})).text
        # the subscriber named with its provider as statements and `account show` name it
        assert f'acme <span class="muted small">(provider {PROVIDER})</span>' in listed

        # Too early: the review takes a working day; the page says when, nothing changes.
        early = await ops.post(f"/numbers/{number}/actions/approve", data={"csrf": token})
        assert early.status_code == 409
        assert "review takes at least 1 official working day(s), possible from" in early.text
        assert (await site.store.number_record(number)) == record

        clock.now = NOW + timedelta(days=1)  # sessions last 12 hours: sign in again
        await ops.aclose()
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{number}")
        assert await post("approve") == 303
        page = await ops.get(f"/numbers/{number}")
        assert 'data-testid="status">active<' in page.text
        for step in ("reserved for 3 days (free)", "applied for by acme", "review passed"):
            assert step in page.text
        history = page.text.split('data-testid="history"', 1)[1]
        assert "opening fee 600.00 to 4006172839" in history and "opening_fee" not in history
        assert [e.amount for e in await site.store.ledger(number)] == [-600]

        audit = (await ops.get("/audit")).text
        for action in ("number reserve", "number apply", "number approve"):
            assert action in audit
        assert "applied, opening fee 600.00" in audit and "opening_fee" not in audit
        assert "under review -&gt; active" in audit, "statuses in words, as the number's page"
        assert "under_review" not in audit
        assert "110101199003071233" not in audit and "110101199003071233" not in page.text
        [acme] = await site.store.subscribers(name="acme")
        assert acme.id_masked == "110***********1233"
        await ops.aclose()


async def test_a_refused_action_says_why_and_when_and_changes_nothing(tmp_path: Path) -> None:
    clock = Clock(NOW)
    number = "4001357924"
    async with running_console(tmp_path, clock=clock) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{number}")
        reserve = {"csrf": token, "provider": PROVIDER}
        assert (await ops.post(f"/numbers/{number}/actions/reserve", data=reserve)).is_redirect
        assert (
            await ops.post(f"/numbers/{number}/actions/release", data={"csrf": token})
        ).is_redirect
        clock.now = NOW + timedelta(minutes=10)
        again = await ops.post(f"/numbers/{number}/actions/reserve", data=reserve)
        assert again.status_code == 409
        assert (  # its own release: the period that follows, not the freeze, says when
            f"{number}: {PROVIDER} held it until 2026-11-24 15:00; the same provider may not "
            "reserve it in the period that follows, possible from 2026-11-27 15:00"
        ) in again.text
        history = await site.store.number_history(number)
        assert [h.to_status for h in history] == ["reserved", "frozen"]
        unknown = await ops.post(f"/numbers/{number}/actions/steal", data={"csrf": token})
        assert unknown.status_code == 404
        forged = await ops.post(f"/numbers/{number}/actions/reserve", data={"provider": PROVIDER})
        assert forged.status_code == 403
        assert len(await site.store.number_history(number)) == 2
        await ops.aclose()
        refusals = sorted(
            (entry.action, entry.target, entry.detail)
            for entry in await site.store.audit_log()
            if entry.action.startswith("refused")
        )
    # the rule's refusal, the unknown action and the forged form, each with why
    assert [(action, target) for action, target, _ in refusals] == [
        ("refused", f"/numbers/{number}/actions/reserve"),
        ("refused", f"/numbers/{number}/actions/steal"),
        ("refused: number reserve", number),
    ]
    assert refusals[0][2].startswith("403: the form expired")
    assert refusals[1][2] == "404: not found"
    assert refusals[2][2].startswith(f"{number}: {PROVIDER} held it until 2026-11-24 15:00")


async def test_a_subscriber_sees_its_own_numbers_only_and_cannot_act(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await seed(site.store, site.config_dir, held_by_shop=True)
        shop = await site.signed_in("shop")
        listing = await shop.get("/numbers")
        assert "400-820-7788" in listing.text
        assert "400-888-8000" not in listing.text and "400-123-4567" not in listing.text
        assert (await shop.get(f"/numbers/{SHOP}")).status_code == 200
        token = await csrf_of(shop, f"/numbers/{SHOP}")
        suspend = await shop.post(f"/numbers/{SHOP}/actions/suspend", data={"csrf": token})
        assert suspend.status_code == 404
        record = await site.store.number_record(SHOP)
        assert record is not None and record.status is Status.ACTIVE

        clinic = await site.signed_in("clinic")
        assert "400-820-7788" not in (await clinic.get("/numbers?pattern=7788")).text
        assert (await clinic.get(f"/numbers/{SHOP}")).status_code == 404
        assert (await clinic.get("/numbers/4008888000")).status_code == 404
        assert (await clinic.get(f"/numbers/{CLINIC}")).status_code == 200
        await shop.aclose()
        await clinic.aclose()


async def test_a_subscriber_sees_its_own_life_of_a_number_not_its_past_holders(
    tmp_path: Path,
) -> None:
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        first = NOW - timedelta(days=200)  # oldco's life: rejected once, in service, cancelled
        await desk.reserve(inventory, number, PROVIDER, first)
        await desk.apply(inventory, number, "oldco", first, full_name="Old Co", material=material)
        await desk.act(
            inventory,
            number,
            "reject",
            "ops",
            first + timedelta(hours=1),
            "oldco's licence expired",
        )
        await desk.submit(inventory, number, first + timedelta(hours=2))
        await desk.act(inventory, number, "cancel", "ops", first + timedelta(days=6))
        again = NOW - timedelta(days=10)  # 30 days' notice and 90 frozen later: newco's
        await desk.reserve(inventory, number, PROVIDER, again)
        await desk.apply(inventory, number, "newco", again, full_name="New Co", material=material)
        for name, account in (("oldco-admin", "oldco"), ("newco-admin", "newco")):
            await site.store.add_user(
                UserRow(name, "subscriber-admin", account, hash_password(PASSWORD), False, NOW)
            )

        newco = await site.signed_in("newco-admin")
        page = await newco.get(f"/numbers/{number}")
        assert page.status_code == 200
        assert "applied for by newco" in page.text
        assert "oldco" not in page.text and "cancellation requested" not in page.text
        operator = await site.signed_in("ops")
        everything = (await operator.get(f"/numbers/{number}")).text
        assert "applied for by oldco" in everything and "applied for by newco" in everything
        oldco = await site.signed_in("oldco-admin")
        assert (await oldco.get(f"/numbers/{number}")).status_code == 404
        for client in (newco, operator, oldco):
            await client.aclose()


async def test_a_special_number_is_held_30_days_only_with_an_intent_form(tmp_path: Path) -> None:
    signed, unsigned, ordinary = "4006585858", "4006121212", "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        await site.store.add_numbers(
            [NumberRecord(n, RULES.grade(n), RULES.fee_of_grade[RULES.grade(n)])
             for n in (signed, unsigned)],
            NOW - timedelta(days=1),
        )  # fmt: skip
        ops = await site.signed_in("ops")
        page = await ops.get(f"/numbers/{signed}")
        assert 'data-testid="intent-form"' in page.text
        assert "a special number is held 30 days with one, 3 without" in page.text
        assert 'data-testid="intent-form"' not in (await ops.get(f"/numbers/{ordinary}")).text
        token = await csrf_of(ops, f"/numbers/{signed}")
        for number, form in ((signed, {"intent_form": "yes"}), (unsigned, {})):
            response = await ops.post(
                f"/numbers/{number}/actions/reserve",
                data={"csrf": token, "provider": PROVIDER, **form},
            )
            assert response.status_code == 303
        held = await site.store.number_record(signed)
        assert held is not None and held.until == NOW + timedelta(days=30)
        assert (
            "reserved for 30 days with an intent form (free)"
            in (await ops.get(f"/numbers/{signed}")).text
        )
        short = await site.store.number_record(unsigned)
        assert short is not None and short.until == NOW + timedelta(days=3)
        [history] = await site.store.number_history(unsigned)
        assert history.reason == "reserved for 3 days, no intent form (free; 30 with one)"
        await ops.aclose()


async def test_review_days_are_beijing_dates_though_the_consoles_clock_reads_utc(
    tmp_path: Path,
) -> None:
    # Friday 2024-06-07 07:00 in Beijing, Thursday 23:00 UTC; Saturday 8 rests and Monday 10
    # is the Dragon Boat Festival: the first working day after it is Tuesday 11.
    friday = datetime(2024, 6, 7, 7, 0, tzinfo=SHANGHAI).astimezone(UTC)
    clock = Clock(friday - timedelta(hours=1))
    number = "4006172839"
    async with running_console(tmp_path, clock=clock) as site:
        await site.store.add_numbers([NumberRecord(number)], friday - timedelta(days=1))
        await site.store.add_party(PartyRow(PROVIDER, "East Telecom Reseller", "", "", "", friday))
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        await desk.reserve(inventory, number, PROVIDER, clock.now)
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        [_, review] = await desk.apply(inventory, number, "acme", friday, material=material)
        assert review.after.until == datetime(2024, 6, 13, 7, 0, tzinfo=SHANGHAI)
        tries = [((2024, 6, 8, 7, 30), 409), ((2024, 6, 11, 6, 59), 409), ((2024, 6, 11, 7), 303)]
        for beijing, code in tries:
            clock.now = datetime(*beijing, tzinfo=SHANGHAI).astimezone(UTC)
            ops = await site.signed_in("ops")  # sessions last 12 hours
            token = await csrf_of(ops, f"/numbers/{number}")
            response = await ops.post(f"/numbers/{number}/actions/approve", data={"csrf": token})
            assert response.status_code == code, beijing
            if code == 409:  # the console's clock reads UTC; the page says Beijing time
                assert "possible from 2024-06-11 07:00" in response.text
            await ops.aclose()
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.ACTIVE


async def number_actions(
    ops: httpx.AsyncClient, number: str
) -> Callable[..., Awaitable[httpx.Response]]:
    """Post one of the number page's lifecycle actions, with its form's fields."""
    token = await csrf_of(ops, f"/numbers/{number}")

    async def post(action: str, **fields: str) -> httpx.Response:
        return await ops.post(f"/numbers/{number}/actions/{action}", data={"csrf": token, **fields})

    return post


async def test_a_subscriber_that_applied_without_material_gives_it_with_the_submission(
    tmp_path: Path,
) -> None:
    """An application without the real-name material locks the number; the material given
    later, on the submit form, is kept and the number goes to review, never left applied."""
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        post = await number_actions(ops, number)

        assert (await post("reserve", provider=PROVIDER)).status_code == 303
        assert (await post("apply", subscriber="acme")).status_code == 303
        page = await ops.get(f"/numbers/{number}")
        assert "acme applied without its real-name material" in page.text
        assert 'name="licence" required' in page.text

        bare = await post("submit")
        assert bare.status_code == 409
        assert "subscriber acme has no real-name material: give its licence" in bare.text
        partial = await post("submit", licence=LICENCE)
        assert partial.status_code == 409
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.APPLIED

        material = {"licence": LICENCE, "legal_rep": "Zhang San", "id_number": "110101199003071233"}
        mistyped = await post("submit", **{**material, "id_number": "110101199003071234"})
        assert mistyped.status_code == 409
        assert "check character (the last) does not match the others" in mistyped.text
        assert "110101199003071234" not in mistyped.text
        assert "110101199003071234" not in str(await site.store.audit_log())
        assert (await post("submit", **material)).status_code == 303
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.UNDER_REVIEW
        [acme] = await site.store.subscribers(name="acme")
        assert (acme.licence, acme.legal_representative) == (LICENCE, "Zhang San")
        assert acme.id_masked == "110***********1233"
        audit = [(e.action, e.detail) for e in await site.store.audit_log()]
        assert ("number submit", "applied -> under review") in audit
        assert "110101199003071233" not in str(audit)
        await ops.aclose()


async def test_a_rejected_review_takes_new_material_from_the_submit_form(tmp_path: Path) -> None:
    """A rejection leaves the number locked to the applicant for new material: the submit
    form offers the fields again, the new material replaces the old, or the old goes again."""
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        post = await number_actions(ops, number)

        first = {"licence": LICENCE, "legal_rep": "Zhang San", "id_number": "110101199003071233"}
        assert (await post("reserve", provider=PROVIDER)).status_code == 303
        assert (await post("apply", subscriber="acme")).status_code == 303
        assert (await post("submit", **first)).status_code == 303
        assert (await post("reject", reason="licence expired")).status_code == 303
        page = await ops.get(f"/numbers/{number}")
        assert "The review was rejected: give acme's new real-name material" in page.text
        assert 'name="licence" required' not in page.text

        renewed = {**first, "licence": "91110000MA01ABCD2Q", "legal_rep": "Li Si"}
        assert (await post("submit", **renewed)).status_code == 303
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.UNDER_REVIEW
        [acme] = await site.store.subscribers(name="acme")
        assert (acme.licence, acme.legal_representative) == ("91110000MA01ABCD2Q", "Li Si")

        assert (await post("reject", reason="still unreadable")).status_code == 303
        assert (await post("submit")).status_code == 303  # the material given before, again
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.UNDER_REVIEW
        again = await post("submit", **first)  # under review: no material changes now
        assert again.status_code == 409
        await ops.aclose()


async def test_a_plan_loaded_for_a_number_before_its_service_is_pointed_out(tmp_path: Path) -> None:
    """A recycled number's plan file is its past holder's: the number's page says so while
    the next holder applies, since once in service its calls follow that plan."""
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        post = await number_actions(ops, number)
        assert (await post("reserve", provider=PROVIDER)).status_code == 303
        assert (await post("apply", subscriber="acme")).status_code == 303
        assert 'data-testid="plan-ahead"' not in (await ops.get(f"/numbers/{number}")).text
        (site.config_dir / "plans" / f"{number}.yaml").write_text(
            f'number: "{number}"\nname: oldco\ndefault: {{target: "13800000011"}}\n',
            encoding="utf-8",
        )
        page = await ops.get(f"/numbers/{number}")
        assert f"A routing plan for {number} is loaded already" in page.text
        assert "Make sure it is acme's plan, not a past holder's." in page.text
        await ops.aclose()


async def test_a_plan_naming_another_subscriber_than_the_holder_is_pointed_out(
    tmp_path: Path,
) -> None:
    """A plan naming oldco routes none of acme's calls: the number's page says so; a plan
    naming acme, written ahead for it, needs no word."""
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        ops = await site.signed_in("ops")
        post = await number_actions(ops, number)
        assert (await post("reserve", provider=PROVIDER)).status_code == 303
        assert (await post("apply", subscriber="acme")).status_code == 303
        path = site.config_dir / "plans" / f"{number}.yaml"
        text = (
            f'number: "{number}"\nname: oldco\nsubscriber: {{}}\n'
            'default: {{target: "13800000011"}}\n'
        )
        path.write_text(text.format("oldco"), encoding="utf-8")
        page = (await ops.get(f"/numbers/{number}")).text
        assert (
            f"The routing plan for {number} (plans/{number}.yaml) names subscriber oldco, but "
            "acme holds the number: the router routes none of its calls by it"
        ) in page
        assert 'data-testid="plan-ahead"' not in page
        path.write_text(text.format("acme"), encoding="utf-8")
        page = (await ops.get(f"/numbers/{number}")).text
        assert 'data-testid="past-holders-plan"' not in page
        assert 'data-testid="plan-ahead"' not in page
        await ops.aclose()


async def test_an_application_whose_opening_fee_takes_a_prepaid_balance_below_its_threshold_warns(
    tmp_path: Path,
) -> None:
    """The shop's account made prepaid (warned under 50.00) with 640.00 on it: the opening
    fee of 600.00 its application books from the number's page leaves 40.00."""
    async with HttpReceiver() as receiver, running_console(tmp_path) as site:
        await seed(site.store)
        tariffs = site.config_dir / "tariffs.yaml"
        text = tariffs.read_text(encoding="utf-8")
        shop = text.index(f'"{SHOP}":')
        prepaid = text[shop:].replace("prepaid: false", "prepaid: true", 1)
        tariffs.write_text(text[:shop] + prepaid, encoding="utf-8")
        with (site.config_dir / "router.yaml").open("a", encoding="utf-8") as router_yaml:
            router_yaml.write(f"low_balance_webhook: {receiver.url}\n")
        await site.store.post_ledger(
            [LedgerEntry(SHOP, NOW, Decimal("640.00"), LedgerKind.PAYMENT, "r1", "")]
        )
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{SHOP}")
        for action, form in (
            ("reserve", {"provider": PROVIDER}),
            ("apply", {"subscriber": "shopco", "licence": LICENCE, "legal_rep": "Li Si",
                       "id_number": "110101199003071233"}),
        ):  # fmt: skip
            done = await ops.post(f"/numbers/{SHOP}/actions/{action}", data={"csrf": token, **form})
            assert done.status_code == 303, done.text
        await ops.aclose()
    assert [warning_facts(json.loads(request.body)) for request in receiver.received] == [
        {"event": "low_balance", "number": SHOP, "balance": "40.00", "threshold": "50.00"}
    ]


async def test_a_numbers_page_shows_it_as_it_is_now_not_as_last_written(tmp_path: Path) -> None:
    """A reservation that ran out a day ago, no numbers tick since: the page says the number
    is back in the pool and offers to reserve it, as the next action will find it."""
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        await desk.reserve(inventory, number, PROVIDER, NOW - timedelta(days=4))
        ops = await site.signed_in("ops")
        page = (await ops.get(f"/numbers/{number}")).text
        assert 'data-testid="status">available<' in page
        assert 'data-testid="reserve"' in page and 'data-testid="release"' not in page
        assert "expired; frozen 30 minutes (fallen due; written at the next numbers tick)" in page
        record = await site.store.number_record(number)
        assert record is not None and record.status is Status.RESERVED  # showing wrote nothing
        await ops.aclose()


async def test_the_operator_withdraws_an_application_under_review(tmp_path: Path) -> None:
    number = "4006172839"
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        await desk.reserve(inventory, number, PROVIDER, NOW - timedelta(hours=2))
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        await desk.apply(inventory, number, "acme", NOW - timedelta(hours=1), material=material)
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, f"/numbers/{number}")
        assert 'data-testid="withdraw"' in (await ops.get(f"/numbers/{number}")).text
        done = await ops.post(f"/numbers/{number}/actions/withdraw", data={"csrf": token})
        assert done.status_code == 303
        record = await site.store.number_record(number)
        assert record is not None
        assert (record.status, record.provider, record.subscriber) == (
            Status.RESERVED,
            PROVIDER,
            None,
        )
        assert record.until == NOW - timedelta(hours=2) + timedelta(days=3)
        assert sum(entry.amount for entry in await site.store.ledger(number)) == 0
        again = await ops.post(f"/numbers/{number}/actions/withdraw", data={"csrf": token})
        assert again.status_code == 409
        assert "it cannot be withdrawn (only an application not yet decided can be)" in again.text
        assert "number withdraw" in (await ops.get("/audit")).text
        await ops.aclose()


async def test_a_subscriber_withdraws_its_own_application_and_staff_cannot(tmp_path: Path) -> None:
    """An applicant may give up before its review has decided; its administrator does it
    from the number's page, its staff only read, and any other action stays the operator's."""
    async with running_console(tmp_path) as site:
        await seed(site.store)
        config = load_config(site.config_dir)
        inventory = Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)
        material = desk.Material(LICENCE, "Li Si", "110***********1233")
        await desk.reserve(inventory, SHOP, PROVIDER, NOW - timedelta(hours=2))
        await desk.apply(inventory, SHOP, "shopco", NOW - timedelta(hours=1), material=material)
        for name, role in (("shop-admin", "subscriber-admin"), ("shop-staff", "subscriber-staff")):
            await site.store.add_user(
                UserRow(name, role, "shopco", hash_password(PASSWORD), False, NOW)
            )
        staff = await site.signed_in("shop-staff")
        assert 'data-testid="withdraw"' not in (await staff.get(f"/numbers/{SHOP}")).text
        token = await csrf_of(staff, f"/numbers/{SHOP}")
        refused = await staff.post(f"/numbers/{SHOP}/actions/withdraw", data={"csrf": token})
        assert refused.status_code == 404

        admin = await site.signed_in("shop-admin")
        page = (await admin.get(f"/numbers/{SHOP}")).text
        assert 'data-testid="withdraw"' in page and 'data-testid="approve"' not in page
        token = await csrf_of(admin, f"/numbers/{SHOP}")
        approve = await admin.post(f"/numbers/{SHOP}/actions/approve", data={"csrf": token})
        assert approve.status_code == 404
        done = await admin.post(f"/numbers/{SHOP}/actions/withdraw", data={"csrf": token})
        assert done.status_code == 303 and done.headers["location"].startswith("/numbers?")
        assert (
            "Application withdrawn: its fees given back"
            in (await admin.get(done.headers["location"])).text
        )
        record = await site.store.number_record(SHOP)
        assert record is not None
        assert (record.status, record.subscriber) == (Status.RESERVED, None)
        history = await site.store.number_history(SHOP)
        assert history[-1].actor == "shop-admin"
        for client in (staff, admin):
            await client.aclose()


async def test_a_number_in_service_without_a_plan_says_its_calls_are_refused(
    tmp_path: Path,
) -> None:
    """As `hotline400 check` warns: a number its subscriber holds in service with no plan
    refuses every call as unknown. Its page says so, and to whom it falls to write one;
    a number with its plan says nothing of it."""
    async with running_console(tmp_path) as site:
        await seed(site.store, site.config_dir, held_by_shop=True)
        ops = await site.signed_in("ops")
        shop = await site.signed_in("shop")
        for client in (ops, shop):
            page = (await client.get(f"/numbers/{SHOP}")).text
            assert 'data-testid="plan-missing"' not in page
        (site.config_dir / "plans" / f"{SHOP}.yaml").unlink()
        told = (await ops.get(f"/numbers/{SHOP}")).text
        assert f"No routing plan is loaded for {SHOP}: its calls are refused" in told
        assert f"until plans/{SHOP}.yaml is written" in told
        seen = (await shop.get(f"/numbers/{SHOP}")).text
        assert "until the operator loads its routing plan" in seen
        await ops.aclose()
        await shop.aclose()


async def test_a_numbers_page_names_the_notice_and_freeze_numbers_yaml_sets(
    tmp_path: Path,
) -> None:
    """numbers.yaml gives 10 days' notice and a 30-day freeze: the cancel button and the
    history say so, not the defaults' 30 and 90 days."""
    clock = Clock(NOW)
    async with running_console(tmp_path, clock=clock) as site:
        numbers_yaml = site.config_dir / "numbers.yaml"
        text = numbers_yaml.read_text(encoding="utf-8")
        text = text.replace("cancellation_notice_days: 30", "cancellation_notice_days: 10")
        text = text.replace("cancelled_freeze_days: 90", "cancelled_freeze_days: 30")
        numbers_yaml.write_text(text, encoding="utf-8")
        await seed(site.store, site.config_dir, held_by_shop=True)
        ops = await site.signed_in("ops")
        page = (await ops.get(f"/numbers/{SHOP}")).text
        assert "Request cancellation (10 days&#39; notice)" in page
        assert "(30 days)" not in page
        token = await csrf_of(ops, f"/numbers/{SHOP}")
        cancel = f"/numbers/{SHOP}/actions/cancel"
        assert (await ops.post(cancel, data={"csrf": token})).status_code == 303
        await ops.aclose()
        clock.now = NOW + timedelta(days=41)
        ops = await site.signed_in("ops")
        history = (await ops.get(f"/numbers/{SHOP}")).text.split('data-testid="history"', 1)[1]
        assert "cancelled (notice period over); frozen 30 days" in history
        assert "30-day freeze ended; available" in history
        assert "90" not in history
        await ops.aclose()


async def test_a_numbers_page_links_only_to_the_pages_its_reader_may_open(tmp_path: Path) -> None:
    """A user of subscriber shopco sees the numbers shopco holds on the Numbers pages, but a
    number's routing, money and calls are its account's (a user whose account is the
    number): the number's page offers them to that user and the operator, and no link
    that answers "not found"."""
    async with running_console(tmp_path) as site:
        await seed(site.store, site.config_dir, held_by_shop=True)
        digest = hash_password(PASSWORD)
        await site.store.add_user(
            UserRow("shopco", "subscriber-admin", "shopco", digest, False, NOW)
        )
        links = (f"/numbers/{SHOP}/routing", f"/numbers/{SHOP}/money")
        for name, offered in (("shopco", False), ("shop", True), ("ops", True)):
            client = await site.signed_in(name)
            page = (await client.get(f"/numbers/{SHOP}")).text
            for link in links:
                assert (f'href="{link}"' in page) is offered, f"{name}: {link}"
                opened = (await client.get(link)).status_code
                assert opened == (200 if offered else 404), f"{name}: {link} {opened}"
            await client.aclose()


async def test_the_numbers_page_is_headed_with_whose_numbers_it_lists(tmp_path: Path) -> None:
    """A subscriber holds numbers; a number holds none: a user whose account is a number
    reads the list as that account's, a subscriber's user as the subscriber's."""
    async with running_console(tmp_path) as site:
        await seed(site.store, site.config_dir, held_by_shop=True)
        digest = hash_password(PASSWORD)
        await site.store.add_user(
            UserRow("shopco", "subscriber-admin", "shopco", digest, False, NOW)
        )
        for name, heading in (
            ("shop", f"Numbers of account {SHOP}"),
            ("shopco", "Numbers held by shopco"),
        ):
            client = await site.signed_in(name)
            page = (await client.get("/numbers")).text
            found = re.search(r"<h1>(.*?)</h1>", page, re.S)
            assert found and " ".join(re.sub(r"<[^>]+>", "", found.group(1)).split()) == heading
            await client.aclose()
