"""The money page: features switched on and off by the account's administrators (the fee
booked in full the day a feature goes on, once a day, with an audit entry; tariffs.yaml
edited on that one line), and the current month's statement showing what closing it will
book as pending."""

from __future__ import annotations

from pathlib import Path

from rating.ledger import LedgerKind
from rating.tariff_loader import load_tariffs
from router.storage.cdr import Outcome
from tests.console.harness import NOW, SHOP, a_call, csrf_of, running_console

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
        assert set(after.splitlines()) - set(before.splitlines()) == {
            f"      {SURVEY}: 2026-11-24"
        }
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
        assert f"{SURVEY}: fee 30.00 yuan booked" in audit
        assert f"{SURVEY}: fee 30.00 yuan already booked today" in audit
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
