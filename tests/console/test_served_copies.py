"""With a configuration file that does not load, the console shows what the routers serve:
its last good copy in the spool_dir router.yaml names (router.configuration.last_good),
said on the pages that show it and on /configuration with the copy's time. What would write
the broken file stays refused or writes only what was checked; without a copy the console
shows the file as before (tests/console/test_config_problems.py)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from console.config_problems import file_anchor
from rating.ledger import LedgerKind
from router.configuration.plan_book import PlanBook
from router.configuration.settings import load_settings
from tests.console.harness import SHANGHAI, SHOP, Site, csrf_of, running_console
from tests.console.test_config_problems import (
    PLAN_TYPO,
    SWITCH,
    TARIFFS_TYPO,
    break_file,
    check_says,
    listed,
    main_text,
    plan_of,
)

ONLY_IN_TARIFFS = "4006005555"
"""A number tariffs.yaml gives an account and no plan file names."""
ITS_ACCOUNT = f"""\
  "{ONLY_IN_TARIFFS}":
    package: regional-100
    prepaid: false
    opened: 2026-01-05
    features:
      recording: 2026-01-05
"""


def copies_kept_by_a_router(site: Site) -> Path:
    """The last good copies a router keeps of the files as they are now, written by the
    router's own loading (a reload of its plan book on its spool_dir); their directory."""
    spool = Path(load_settings(site.config_dir).spool_dir) / "last-good"
    assert PlanBook(site.config_dir, SHANGHAI, spool).reload().ok
    return spool


def kept_at(copy: Path) -> str:
    """The copy's time as the routers' log and the console tell it."""
    when = datetime.fromtimestamp(copy.stat().st_mtime, SHANGHAI)
    return when.isoformat(sep=" ", timespec="seconds")


async def test_with_tariffs_broken_the_pages_show_the_copy_the_routers_serve(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        tariffs = site.config_dir / "tariffs.yaml"
        break_file(tariffs, "accounts:\n", "accounts:\n" + ITS_ACCOUNT)
        copy = copies_kept_by_a_router(site) / "tariffs.yaml"
        break_file(tariffs, *TARIFFS_TYPO)
        broken = tariffs.read_bytes()
        served = f"The routers serve the copy of tariffs.yaml of {kept_at(copy)}, because"
        ops, shop = await site.signed_in("ops"), await site.signed_in("shop")

        accounts = (await ops.get("/accounts")).text
        row = re.search(rf'data-testid="account-{ONLY_IN_TARIFFS}">(.*?)</tr>', accounts, re.S)
        assert row, "the number only tariffs.yaml names is missing from the accounts"
        assert "regional-100" in row.group(1)
        said = main_text(accounts)
        assert f"{tariffs} has problems: the routers serve the copy of {kept_at(copy)}" in said

        page = await ops.get(f"/numbers/{ONLY_IN_TARIFFS}/money")
        assert page.status_code == 200
        said = main_text(page.text)
        assert f"{served} {tariffs} has problems" in said
        assert "regional-100" in said and "on since 2026-01-05" in said
        assert f'href="/configuration#{file_anchor(str(tariffs))}"' in page.text
        assert 'data-testid="switch-recording"' not in page.text, "no switch offered"

        said = main_text((await shop.get(f"/numbers/{SHOP}/money")).text)
        assert f"{served} tariffs.yaml" in said
        assert "the operator's tariff file, has problems" in said
        assert "nationwide-300" in said and str(site.config_dir) not in said

        page = (await ops.get("/configuration")).text
        assert listed(page) == await check_says(site), "the problems are the file's, as ever"
        section = re.search(r'data-testid="problems-of">(.*?)</section>', page, re.S)
        assert section and str(tariffs) in section.group(1)
        assert f"The routers serve the copy of {kept_at(copy)}, because this file has problems" in (
            main_text(f"<main>{section.group(1)}</main>")
        )
        dashboard = main_text((await ops.get("/")).text)
        assert "the routers serve the last good copy of 1 of these files" in dashboard

        for client in (ops, shop):
            token = await csrf_of(client, f"/numbers/{SHOP}/money")
            refused = await client.post(SWITCH, data={"csrf": token, "on": "1"})
            assert refused.status_code == 503
            assert "Features cannot be switched while tariffs.yaml has problems." in (
                main_text(refused.text)
            )
        assert tariffs.read_bytes() == broken, "neither the switch nor the copy written"
        assert await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE) == []
        await ops.aclose()
        await shop.aclose()


async def test_a_broken_plan_opens_on_its_file_and_previews_the_copy_that_routes_its_calls(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        plan = plan_of(site, SHOP)
        clean = plan.read_text(encoding="utf-8")
        copy = copies_kept_by_a_router(site) / "plans" / f"{SHOP}.yaml"
        break_file(plan, *PLAN_TYPO)
        shown = f"config/plans/{SHOP}.yaml"
        for name in ("ops", "shop"):
            client = await site.signed_in(name)
            page = await client.get(f"/numbers/{SHOP}/routing")
            said = main_text(page.text)
            assert (
                f"The routers serve the copy of {kept_at(copy)}, because {shown} has problems"
                in said
            )
            assert "The plan on file has problems:" in said and "ring_timout" in said
            assert "Preview of the copy the routers serve" in said
            assert 'data-testid="preview"' in page.text

            problems = (await client.get("/configuration")).text
            assert f"The routers serve the copy of {kept_at(copy)}" in main_text(problems)
            await client.aclose()

        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        saved = await shop.post(
            f"/numbers/{SHOP}/routing", data={"csrf": token, "yaml": clean, "action": "save"}
        )
        assert saved.status_code == 303, "the fix is saved over the broken file"
        assert plan.read_text(encoding="utf-8") == clean
        page = (await shop.get(f"/numbers/{SHOP}/routing")).text
        assert 'data-testid="plan-copy"' not in page
        assert "Preview of the copy" not in main_text(page)
        await shop.aclose()


async def test_a_copy_elsewhere_than_router_yamls_spool_dir_is_not_read(tmp_path: Path) -> None:
    """The console reads the copies where router.yaml says the routers keep them, not any
    directory that happens to hold some."""
    async with running_console(tmp_path) as site:
        kept = copies_kept_by_a_router(site)
        router_yaml = site.config_dir / "router.yaml"
        break_file(router_yaml, str(kept.parent), str(tmp_path / "elsewhere"))
        break_file(site.config_dir / "tariffs.yaml", *TARIFFS_TYPO)
        ops = await site.signed_in("ops")
        money = main_text((await ops.get(f"/numbers/{SHOP}/money")).text)
        assert "features are not shown" in money and "routers serve the copy" not in money
        await ops.aclose()


async def test_tariffs_the_routers_refuse_show_the_copy_they_charge_by(tmp_path: Path) -> None:
    """tariffs.yaml with a rent raised without notice parses, but a router refuses it against
    its last good copy and keeps charging the copy's rent: the console lists the refusal as
    `check` does and shows the copy's rent, saying why."""
    async with running_console(tmp_path) as site:
        tariffs = site.config_dir / "tariffs.yaml"
        copy = copies_kept_by_a_router(site) / "tariffs.yaml"
        break_file(tariffs, "monthly_rent: 300.00", "monthly_rent: 320.00")
        ops = await site.signed_in("ops")

        page = (await ops.get("/configuration")).text
        assert listed(page) == await check_says(site)
        assert any(
            "prices of nationwide-300 raised from" in line and "refused" in line
            for line in listed(page)
        )
        assert f"The routers serve the copy of {kept_at(copy)}" in main_text(page)

        said = main_text((await ops.get(f"/numbers/{SHOP}/money")).text)
        assert f"The routers serve the copy of tariffs.yaml of {kept_at(copy)}" in said
        assert "closing 2026-11 books rent 300.00 yuan (nationwide-300 rent 2026-11)" in said
        assert "320.00" not in said
        await ops.aclose()
