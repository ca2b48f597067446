"""A 400 number passes from company to company: cancelled, frozen 90 days, back to the pool,
applied for by another. A subscriber's users see the number's calls, recordings, plans,
reports and money of the current holding only (since the number last came back to the pool),
and the previous holder's users, still bound to the number, no longer sign in: their
sessions end at their next request. The operator sees every holding.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote

from console.security import hash_password
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.configuration.config_dir import load_config
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.storage.cdr import FinishCall
from router.storage.console_rows import AuditEntry, UserRow
from router.storage.number_rows import PartyRow
from tests.conftest import UNWATCHED, scratch_schema
from tests.console.harness import (
    NOW,
    PASSWORD,
    SHOP,
    Site,
    a_call,
    csrf_of,
    running_console,
    sign_in,
)
from tests.console.test_numbers import Clock
from tests.console.test_recordings import WAV, a_recording, recordings_dir

PROVIDER = "sp-east"
MATERIAL = desk.Material("91110000100000000R", "Li Si", "110***********1233")
OLD_LIFE = NOW - timedelta(days=200)
"""oldco applies for SHOP; cancelled 30 days later, it is back in the pool about 4 Oct."""
NEW_LIFE = NOW - timedelta(days=40)
"""newco applies for it once it is back in the pool."""


async def old_holding(site: Site, tmp_path: Path) -> None:
    """SHOP in service for oldco, with a call (recorded, scored, from Xinjiang), a plan
    version and a refund of its balance, then cancelled; oldco's admin is `old-admin`."""
    store = site.store
    rules = NumberRules()
    await store.add_numbers(
        [NumberRecord(SHOP, rules.grade(SHOP), rules.fee_of_grade[rules.grade(SHOP)])],
        OLD_LIFE - timedelta(days=1),
    )
    await store.add_party(PartyRow(PROVIDER, "East Telecom Reseller", "", "", "", OLD_LIFE))
    inventory = inventory_of(site)
    await desk.reserve(inventory, SHOP, PROVIDER, OLD_LIFE)
    await desk.apply(inventory, SHOP, "oldco", OLD_LIFE, material=MATERIAL)
    await store.add_user(
        UserRow("old-admin", "subscriber-admin", SHOP, hash_password(PASSWORD), False, OLD_LIFE)
    )
    file = a_recording(recordings_dir(site, tmp_path), SHOP, "old.1")
    await store.apply(
        [
            *a_call(
                "old.1",
                SHOP,
                OLD_LIFE + timedelta(days=10),
                caller="13900000001",
                province="新疆",
                city="乌鲁木齐",
            ),
            FinishCall("old.1", {"recording_path": str(file), "survey_score": 1}),
        ]
    )
    await store.save_plan_version(
        SHOP, 'number: "4008207788"\n', "old-admin", OLD_LIFE + timedelta(days=6), "oldco's plan"
    )
    await store.audit(
        AuditEntry(
            OLD_LIFE + timedelta(days=11),
            "old-admin",
            SHOP,
            "play recording",
            "old.1",
            f"call to {SHOP}",
        )
    )
    await desk.act(inventory, SHOP, "cancel", "ops", OLD_LIFE + timedelta(days=30))
    await store.post_ledger(  # oldco's balance refunded while the number was frozen
        [
            LedgerEntry(
                SHOP,
                NOW - timedelta(days=60),
                Decimal("-42.00"),
                LedgerKind.ADJUSTMENT,
                "refund-oldco",
                "balance refunded to oldco",
            )
        ]
    )


async def new_holding(site: Site) -> None:
    """SHOP back in the pool and applied for by newco, with a call and a plan version."""
    inventory = inventory_of(site)
    await desk.reserve(inventory, SHOP, PROVIDER, NEW_LIFE)
    await desk.apply(inventory, SHOP, "newco", NEW_LIFE, material=MATERIAL)
    await site.store.apply(
        [
            *a_call("new.1", SHOP, NOW - timedelta(days=5), caller="13800000002"),
            FinishCall("new.1", {"survey_score": 5}),
        ]
    )
    await site.store.save_plan_version(
        SHOP, 'number: "4008207788"\n', "shop", NOW - timedelta(days=5), "newco's plan"
    )


def inventory_of(site: Site) -> Inventory:
    config = load_config(site.config_dir)
    return Inventory(site.store, config.number_rules, config.calendar, UNWATCHED)


async def test_the_new_holder_sees_its_own_calls_and_recordings_only(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        shop = await site.signed_in("shop")  # newco's administrator
        listing = (await shop.get("/calls", params={"number": SHOP})).text
        assert "new.1" in listing and "old.1" not in listing
        assert "13900000001" not in listing
        early = await shop.get("/calls", params={"since": f"{OLD_LIFE:%Y-%m-%d}"})
        assert "13800000002" in early.text and "13900000001" not in early.text
        export = (await shop.get("/calls.csv", params={"number": SHOP})).text
        assert "new.1" in export and "old.1" not in export
        assert (await shop.get("/calls/old.1")).status_code == 404
        played = await shop.get("/calls/old.1/recording")
        assert played.status_code == 404 and WAV not in played.content
        assert (await shop.get("/calls/new.1")).status_code == 200
        ops = await site.signed_in("ops")
        audit = (await shop.get("/audit")).text
        assert "old-admin" not in audit and "old.1" not in audit
        assert "old-admin" not in (await shop.get("/users")).text
        assert "old-admin" in (await ops.get("/users")).text

        assert "old.1" in (await ops.get("/calls", params={"number": SHOP})).text
        assert "old.1" in (await ops.get("/calls.csv", params={"number": SHOP})).text
        assert (await ops.get("/calls/old.1/recording")).content == WAV
        for client in (shop, ops):
            await client.aclose()


async def test_the_new_holder_sees_its_own_plan_versions_only(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        versions = await site.store.plan_versions(SHOP)
        old, new = (v.version for v in sorted(versions, key=lambda v: v.saved_at))
        shop = await site.signed_in("shop")
        routing = (await shop.get(f"/numbers/{SHOP}/routing")).text
        assert "newco&#39;s plan" in routing and "oldco" not in routing
        assert f"/routing/versions/{old}" not in routing
        assert (await shop.get(f"/numbers/{SHOP}/routing/versions/{old}")).status_code == 404
        assert (await shop.get(f"/numbers/{SHOP}/routing/versions/{new}")).status_code == 200
        announced = await shop.get(f"/numbers/{SHOP}/routing", params={"saved": str(old)})
        assert f"Saved as version {old}" not in announced.text
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        restore = await shop.post(
            f"/numbers/{SHOP}/routing/versions/{old}/restore", data={"csrf": token}
        )
        assert restore.status_code == 404
        assert len(await site.store.plan_versions(SHOP)) == 2

        ops = await site.signed_in("ops")
        assert "oldco&#39;s plan" in (await ops.get(f"/numbers/{SHOP}/routing")).text
        assert (await ops.get(f"/numbers/{SHOP}/routing/versions/{old}")).status_code == 200
        for client in (shop, ops):
            await client.aclose()


async def test_the_new_holders_reports_and_surveys_count_its_own_calls(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        span = {"from": f"{OLD_LIFE:%Y-%m-%d}", "to": f"{NOW:%Y-%m-%d}"}
        shop = await site.signed_in("shop")
        report = (await shop.get("/reports", params={**span, "number": SHOP})).text
        assert "新疆" not in report and "山东" in report
        assert "5.00" in report and "3.00" not in report  # newco's one score, not the average
        everything = (await shop.get("/reports", params=span)).text
        assert "新疆" not in everything
        ops = await site.signed_in("ops")
        seen = (await ops.get("/reports", params={**span, "number": SHOP})).text
        assert "新疆" in seen and "3.00" in seen
        for client in (shop, ops):
            await client.aclose()


async def test_the_new_holders_money_page_leaves_out_months_before_its_holding(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        shop = await site.signed_in("shop")
        money = (await shop.get(f"/numbers/{SHOP}/money")).text
        assert "2026-11" in money and "2026-10" in money  # back in the pool on 4 October
        assert "2026-09" not in money
        assert "refund-oldco" not in money and "balance refunded to oldco" not in money
        ops = await site.signed_in("ops")
        seen = (await ops.get(f"/numbers/{SHOP}/money")).text
        assert "2026-09" in seen and "refund-oldco" in seen
        for client in (shop, ops):
            await client.aclose()


async def money_pages_after_a_change_of_hands(tmp_path: Path) -> tuple[str, str]:
    """The shop number's money page as the operator and as newco's user see it, once the
    number went from oldco (who paid 42.00 on 2 October) back to the pool on 5 October
    and on to newco."""
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        paid = LedgerEntry(
            SHOP, NOW.replace(month=10, day=2), Decimal("42.00"), LedgerKind.PAYMENT, "oldco-oct"
        )
        await site.store.post_ledger([paid])
        await new_holding(site)
        ops = await site.signed_in("ops")
        seen = (await ops.get(f"/numbers/{SHOP}/money")).text
        shop = await site.signed_in("shop")
        money = (await shop.get(f"/numbers/{SHOP}/money")).text
        for client in (ops, shop):
            await client.aclose()
    return seen, money


async def test_a_month_the_number_changed_hands_in_is_a_statement_per_holder(
    tmp_path: Path,
) -> None:
    """Back in the pool on 5 October: oldco's part of October (a payment it made on the
    2nd) is a statement of its own, which newco's users do not see."""
    seen, money = await money_pages_after_a_change_of_hands(tmp_path)
    assert seen.count('data-testid="part-2026-10"') == 2
    assert "held 10-01 00:00 to 10-05" in seen
    assert money.count('data-testid="part-2026-10"') == 1
    assert "held 10-01 00:00" not in money and "held 10-05" in money


async def test_each_statement_of_a_month_the_number_changed_hands_in_names_its_holder(
    tmp_path: Path,
) -> None:
    """The operator's October statements of the shop's number are oldco's and newco's, each
    named with its service provider (oldco's part has its payment of the 2nd); newco's users
    see their own statement, named newco."""
    seen, money = await money_pages_after_a_change_of_hands(tmp_path)
    provider = f'<span class="muted">(provider {PROVIDER})</span>'
    october = [row for row in seen.split("<tr") if 'data-testid="part-2026-10"' in row]
    assert [(holder_of(row), "held 10-01 00:00" in row) for row in october] == [
        (f"newco {provider}", False),  # the latest holding's first
        (f"oldco {provider}", True),
    ]
    assert f'data-testid="holder-2026-11">newco {provider}</div>' in seen
    assert money.count(f'data-testid="holder-2026-10">newco {provider}</div>') == 1
    assert "oldco" not in money


def holder_of(row: str) -> str:
    """What a statement's row says of its holder."""
    shown = row.split('data-testid="holder-', 1)[1]
    return shown[shown.index('">') + 2 : shown.index("</div>")]


async def test_the_previous_holders_users_no_longer_sign_in_and_their_sessions_end(
    tmp_path: Path,
) -> None:
    clock = Clock(NOW)
    async with running_console(tmp_path, clock=clock) as site:
        await old_holding(site, tmp_path)
        old = await site.signed_in("old-admin")  # the number is not back in the pool yet
        assert "old.1" in (await old.get("/calls")).text
        assert (await old.get("/calls/old.1/recording")).content == WAV
        await new_holding(site)

        for path in ("/", "/calls", "/calls/new.1", "/calls.csv", f"/numbers/{SHOP}/money"):
            ended = await old.get(path)
            assert ended.status_code in (303, 403), path
            assert "new.1" not in ended.text and "13800000002" not in ended.text
        login = await old.get(ended.headers.get("location", "/login"))
        assert login.status_code == 200
        again = site.client()
        refused = await sign_in(again, "old-admin")
        assert refused.status_code == 403
        said = unquote(refused.text)
        assert "no longer held by your company" in said and "400-820-7788" in said
        assert "hotline400_session" not in refused.cookies

        shop = await site.signed_in("shop")  # newco's users sign in and see their own
        assert "new.1" in (await shop.get("/calls")).text
        for client in (old, again, shop):
            await client.aclose()


async def test_the_holding_is_bounded_alike_on_postgresql(tmp_path: Path) -> None:
    async with scratch_schema() as url, running_console(tmp_path, url) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        shop = await site.signed_in("shop")
        listing = (await shop.get("/calls")).text
        assert "new.1" in listing and "old.1" not in listing
        assert (await shop.get("/calls/old.1/recording")).status_code == 404
        again = site.client()
        assert (await sign_in(again, "old-admin")).status_code == 403
        for client in (shop, again):
            await client.aclose()


async def test_a_plan_naming_the_previous_holder_is_not_saved_and_a_new_one_names_the_holder(
    tmp_path: Path,
) -> None:
    """The router routes none of newco's calls by a plan naming oldco: the routing page says
    so of the plan on file, a save naming oldco is refused at its `subscriber` line, one naming
    newco is saved, and the plan offered for a number without one names its holder."""
    async with running_console(tmp_path) as site:
        await old_holding(site, tmp_path)
        await new_holding(site)
        path = site.config_dir / "plans" / f"{SHOP}.yaml"
        shipped = path.read_text(encoding="utf-8")
        olds = shipped.replace(f'number: "{SHOP}"\n', f'number: "{SHOP}"\nsubscriber: oldco\n')
        path.write_text(olds, encoding="utf-8")
        line = olds.splitlines().index("subscriber: oldco") + 1
        problem = (
            f"config/plans/{SHOP}.yaml:{line} subscriber: oldco, but newco holds {SHOP}: a past "
            "holder&#39;s plan routes none of its calls (refused as a number without a plan); "
            "write newco&#39;s plan"
        )
        shop = await site.signed_in("shop")  # newco's administrator
        routing = f"/numbers/{SHOP}/routing"
        assert problem in (await shop.get(routing)).text

        token = await csrf_of(shop, routing)
        form = {"csrf": token, "mode": "yaml", "action": "save"}
        refused = await shop.post(routing, data={**form, "yaml": olds})
        assert refused.status_code == 422
        assert "The plan was not saved:" in refused.text and problem in refused.text
        previewed = await shop.post(routing, data={**form, "action": "preview", "yaml": olds})
        assert f"{SHOP} is held by newco, not by oldco, the subscriber its plan names" in (
            previewed.text
        )
        news = olds.replace("subscriber: oldco", "subscriber: newco")
        assert (await shop.post(routing, data={**form, "yaml": news})).status_code == 303
        assert path.read_text(encoding="utf-8") == news

        path.unlink()
        offered = (await shop.get(routing)).text
        assert "subscriber: &#34;newco&#34;" in offered
        token = await csrf_of(shop, routing)
        saved = await shop.post(
            routing,
            data={
                "csrf": token,
                "mode": "form",
                "action": "save",
                "default_target": "13801650000",
                "on_busy": "",
                "on_no_answer": "",
            },
        )
        assert saved.status_code == 303
        assert "subscriber: newco" in path.read_text(encoding="utf-8")
        await shop.aclose()
