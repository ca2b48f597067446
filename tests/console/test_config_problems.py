"""The console tells the configuration's problems in `hotline400 check`'s words: a notice on
the dashboard, a page listing them file by file, current as files are broken and fixed; a
change a broken file prevents names the file instead of answering "not found". A
subscriber's users see their own plan's problems only: the other files are the operator's
and name other subscribers' numbers."""

from __future__ import annotations

import asyncio
import html
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from console import config_problems
from console.config_problems import file_anchor
from rating.ledger import LedgerKind
from tests.conftest import REPO
from tests.console.harness import CLINIC, SHOP, Site, csrf_of, running_console

SWITCH = f"/numbers/{SHOP}/money/features/satisfaction_survey"
TARIFFS_TYPO = ("monthly_rent: 100.00", "monthly_rnet: 100.00")
PLAN_TYPO = ("ring_timeout: 20", "ring_timout: 20")


def break_file(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def plan_of(site: Site, number: str) -> Path:
    return site.config_dir / "plans" / f"{number}.yaml"


async def check_says(site: Site) -> list[str]:
    """The problem lines of `hotline400 check --config DIR` run as an admin runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "router.cli",
        "check",
        "--config",
        str(site.config_dir),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    lines = out.decode().splitlines()
    return [line for line in lines if not line.startswith(("warning: ", "checked "))]


def listed(page: str) -> list[str]:
    """The problems a page lists, as text."""
    return [html.unescape(item) for item in re.findall(r"<li><code>(.*?)</code></li>", page)]


def main_text(page: str) -> str:
    """What the page's main part says, as read: its words without the markup."""
    found = re.search(r"<main>(.*)</main>", page, re.S)
    assert found, "no main"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


async def test_the_operator_reads_checks_problems_and_sees_a_fixed_file_drop_out(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        assert 'data-testid="config-problems"' not in (await ops.get("/")).text
        assert 'data-testid="no-problems"' in (await ops.get("/configuration")).text

        tariffs = site.config_dir / "tariffs.yaml"
        clean = tariffs.read_text(encoding="utf-8")
        break_file(tariffs, *TARIFFS_TYPO)
        break_file(plan_of(site, SHOP), *PLAN_TYPO)
        expected = await check_says(site)
        assert len(expected) == 2 and expected[0].startswith(f"{tariffs}:")

        dashboard = (await ops.get("/")).text
        notice = re.search(r'data-testid="config-problems">(.*?)</p>', dashboard, re.S)
        assert notice, "no notice of the problems on the dashboard"
        said = html.unescape(re.sub(r"<[^>]+>", "", notice.group(1)))
        assert said.startswith(f"2 configuration problems in {tariffs}, ")
        assert 'href="/configuration"' in notice.group(1)

        page = (await ops.get("/configuration")).text
        assert listed(page) == expected
        assert f'id="{file_anchor(str(tariffs))}"' in page

        tariffs.write_text(clean, encoding="utf-8")
        assert listed((await ops.get("/configuration")).text) == expected[1:]
        assert "1 configuration problem in " in main_text((await ops.get("/")).text)
        await ops.aclose()


async def test_a_feature_switch_with_a_broken_tariffs_file_names_it_not_not_found(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        tariffs = site.config_dir / "tariffs.yaml"
        break_file(tariffs, *TARIFFS_TYPO)
        broken = tariffs.read_bytes()
        ops, shop, clinic = [await site.signed_in(name) for name in ("ops", "shop", "clinic")]

        token = await csrf_of(ops, f"/numbers/{SHOP}/money")
        refused = await ops.post(SWITCH, data={"csrf": token, "on": "1"})
        assert refused.status_code == 503
        said = main_text(refused.text)
        assert "Features cannot be switched while tariffs.yaml has problems." in said
        assert f'href="/configuration#{file_anchor(str(tariffs))}"' in refused.text
        money = main_text((await ops.get(f"/numbers/{SHOP}/money")).text)
        assert f"{tariffs} has problems" in money and "features are not shown" in money
        assert "no account in tariffs.yaml" not in money

        token = await csrf_of(shop, f"/numbers/{SHOP}/money")
        refused = await shop.post(SWITCH, data={"csrf": token, "on": "1"})
        assert refused.status_code == 503
        said = main_text(refused.text)
        assert "Features cannot be switched while tariffs.yaml has problems." in said
        assert "/configuration" not in refused.text and "monthly_rnet" not in said
        assert str(site.config_dir) not in said

        token = await csrf_of(clinic, "/")
        assert (await clinic.post(SWITCH, data={"csrf": token, "on": "1"})).status_code == 404
        assert tariffs.read_bytes() == broken
        assert await site.store.ledger(SHOP, kind=LedgerKind.FEATURE_FEE) == []
        for client in (ops, shop, clinic):
            await client.aclose()


async def test_a_plan_that_does_not_load_opens_in_its_editor_with_its_problems(
    tmp_path: Path,
) -> None:
    """With tariffs.yaml broken too, the number has neither a plan nor an account the
    console can read: its routing page still opens, on the file and its problems."""
    async with running_console(tmp_path) as site:
        break_file(site.config_dir / "tariffs.yaml", *TARIFFS_TYPO)
        break_file(plan_of(site, SHOP), *PLAN_TYPO)
        for name in ("ops", "shop"):
            client = await site.signed_in(name)
            page = await client.get(f"/numbers/{SHOP}/routing")
            assert page.status_code == 200
            said = main_text(page.text)
            assert "The plan on file has problems:" in said and "ring_timout" in said
            await client.aclose()


async def test_a_subscriber_sees_its_own_plans_problems_and_no_others(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        break_file(site.config_dir / "tariffs.yaml", *TARIFFS_TYPO)
        break_file(plan_of(site, SHOP), *PLAN_TYPO)
        break_file(plan_of(site, CLINIC), "number:", "numbr:")
        expected = await check_says(site)
        assert len(expected) == 3
        for name, number in (("shop", SHOP), ("shopstaff", SHOP), ("clinic", CLINIC)):
            client = await site.signed_in(name)
            own = [line for line in expected if line.startswith(str(plan_of(site, number)))]
            shown = [  # named as the routing page names it, not by the operator's path
                line.replace(str(site.config_dir), "config") for line in own
            ]
            page = (await client.get("/configuration")).text
            assert listed(page) == shown
            assert "tariffs.yaml" not in main_text(page)
            dashboard = main_text((await client.get("/")).text)
            assert "1 configuration problem in config/plans/" in dashboard
            assert f'href="/numbers/{number}/routing">routing page<' in page
            assert "tariffs.yaml" not in dashboard and str(site.config_dir) not in dashboard
            await client.aclose()


async def test_the_operators_not_found_says_when_a_broken_file_may_be_why(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        ops, shop = await site.signed_in("ops"), await site.signed_in("shop")
        hint = 'data-testid="config-problems"'
        assert hint not in (await ops.get("/numbers/4009999999/routing")).text
        break_file(site.config_dir / "tariffs.yaml", *TARIFFS_TYPO)
        page = await ops.get("/numbers/4009999999/routing")
        assert page.status_code == 404 and hint in page.text
        page = await shop.get("/numbers/4009999999/routing")
        assert page.status_code == 404 and hint not in page.text
        await ops.aclose()
        await shop.aclose()


async def test_pages_share_one_listing_until_a_file_changes_or_it_is_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every user's dashboard shows the notice: the inventory and the prompts are read for
    it once per PROBLEMS_FRESH_S, and again at once when a file changed."""
    listings: list[object] = []
    real = config_problems.compared_with_store

    async def counted(*args: Any, **kwargs: Any) -> Any:
        listings.append(args)
        return await real(*args, **kwargs)

    monkeypatch.setattr(config_problems, "compared_with_store", counted)
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        for _ in range(3):
            assert (await ops.get("/")).status_code == 200
        assert len(listings) == 1

        break_file(plan_of(site, SHOP), *PLAN_TYPO)
        assert 'data-testid="config-problems"' in (await ops.get("/")).text
        assert len(listings) == 2

        monkeypatch.setattr(config_problems, "PROBLEMS_FRESH_S", 0.0)
        await ops.get("/")
        assert len(listings) == 3
