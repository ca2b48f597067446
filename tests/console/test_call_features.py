"""What the in-call features leave on a call record, as the console shows it: the way
through the IVR menus, the keys pressed and the prompt language on the call's page and in
the CSV export, the menu paths in the reports, and the satisfaction scores on the call's
page, in the reports and in `hotline400 report`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from router.cli import main
from router.storage.cdr import FinishCall
from tests.console.harness import FACTORY, NOW, SHOP, a_call, running_console


def menu_call(call_id: str, path: str, keys: str, minutes_ago: int) -> list[object]:
    ops = a_call(call_id, SHOP, NOW - timedelta(minutes=minutes_ago))
    fields = {"menu_path": path, "menu_digits": keys, "language": "en"}
    return [*ops, FinishCall(call_id, fields)]


async def test_a_call_page_shows_the_menu_path_keys_and_language(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(menu_call("m1", "main:3>english:1", "31", 30))
        shop = await site.signed_in("shop")
        page = (await shop.get("/calls/m1")).text
        assert "<dt>IVR path</dt><dd>main:3&gt;english:1</dd>" in page
        assert "<dt>Keys pressed</dt><dd>31</dd>" in page
        assert "<dt>Language</dt><dd>en</dd>" in page
        rows = list(
            csv.DictReader(io.StringIO((await shop.get("/calls.csv")).content.decode("utf-8-sig")))
        )
        assert (rows[0]["menu_path"], rows[0]["menu_digits"]) == ("main:3>english:1", "31")
        await shop.aclose()


async def test_reports_show_how_callers_went_through_the_menus(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *menu_call("m1", "main:1", "1", 50),
                *menu_call("m2", "main:1", "71", 40),
                *menu_call("m3", "main:default", "", 30),
                *a_call("m4", SHOP, NOW - timedelta(minutes=20)),  # no menu: not counted
            ]
        )
        shop = await site.signed_in("shop")
        day = NOW.date().isoformat()
        page = (await shop.get(f"/reports?number={SHOP}&from={day}&to={day}")).text
        assert "Ways through the menus" in page
        assert '<td>main:1</td><td class="num">2</td>' in page
        assert '<td>main:default</td><td class="num">1</td>' in page
        await shop.aclose()


def scored_call(call_id: str, number: str, score: int, minutes_ago: int) -> list[object]:
    ops = a_call(call_id, number, NOW - timedelta(minutes=minutes_ago))
    return [*ops, FinishCall(call_id, {"survey_score": score})]


async def test_the_call_page_and_the_reports_show_the_satisfaction_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *scored_call("s1", SHOP, 5, 50),
                *scored_call("s2", SHOP, 2, 40),
                *a_call("s3", SHOP, NOW - timedelta(minutes=30)),  # not scored: not counted
                *scored_call("s4", FACTORY, 1, 20),  # another account's: not shown
            ]
        )
        shop = await site.signed_in("shop")
        call_page = (await shop.get("/calls/s1")).text
        assert '<dt>Survey score</dt><dd><span data-testid="survey-score">5</span>' in call_page
        assert "Survey score" not in (await shop.get("/calls/s3")).text
        rows = csv.DictReader(
            io.StringIO((await shop.get("/calls.csv")).content.decode("utf-8-sig"))
        )
        assert {row["call_id"]: row["survey_score"] for row in rows} == {
            "s1": "5",
            "s2": "2",
            "s3": "",
        }
        day = NOW.date().isoformat()
        page = (await shop.get(f"/reports?from={day}&to={day}")).text
        assert "Satisfaction scores" in page
        assert f'<td>{SHOP}</td><td class="num">3.50</td><td class="num">2</td>' in page
        assert FACTORY not in page
        await shop.aclose()
        report = ["report", "--config", str(site.config_dir), "--number", SHOP]
        span = ["--from", day, "--to", day]
        assert await asyncio.to_thread(main, [*report, *span, "--format", "json"]) == 0
        figures = json.loads(capsys.readouterr().out)
        assert figures["survey_scores"] == [{"number": SHOP, "scored": 2, "average": 3.5}]
        assert await asyncio.to_thread(main, [*report, *span]) == 0
        table = capsys.readouterr().out
        assert f"satisfaction scores (1-5):\n  {SHOP}  average 3.50 of 2 scored call(s)" in table
