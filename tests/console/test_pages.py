"""What the console's pages show and do: routing edits checked like `hotline400 check`,
versions and rollback, call-record search and CSV, reports, and the live dashboard."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import html
import io
import re
import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from console.plan_editing import preview
from console.views import calls as calls_view
from console.views.calls import EXPORT_BATCH
from dialplan.errors import ConfigError
from dialplan.plan_loader import parse_plan
from numbering.lifecycle import NumberRecord, Status
from rating.ledger import LedgerEntry, LedgerKind
from router.cli import main
from router.commands.workbook import XLSX_MEDIA_TYPE
from router.configuration.config_dir import load_config
from router.configuration.settings import load_settings
from router.storage.cdr import Outcome
from router.storage.sqlite import SQLiteStore
from tests.conftest import scratch_schema
from tests.console.harness import (
    CLINIC,
    NOW,
    SHOP,
    Site,
    a_call,
    console_config,
    csrf_of,
    running_console,
)
from tests.xlsx_reading import Cell, read_workbook

GOOD_TARGET = "02155550000"


async def test_a_plan_with_an_error_is_refused_with_the_checks_own_words(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        before = plan_file.read_text(encoding="utf-8")
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        broken = before.replace("ring_timeout: 20", "ring_timeout: 2000")
        response = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={"csrf": token, "mode": "yaml", "action": "save", "yaml": broken},
        )
        assert response.status_code == 422
        assert f"config/plans/{SHOP}.yaml:" in response.text
        assert "ring_timeout:" in response.text
        assert plan_file.read_text(encoding="utf-8") == before
        await shop.aclose()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("ring_timeout: 20", "\tring_timeout: 20"),
        ("forwarding:", "forwading:"),
        ('target: "02155550001"', 'target: "02155550001'),
        ("percent: 60,", "percent: 59.5,"),
    ],
    ids=["a tab", "a misspelt key", "an unclosed quote", "a fraction"],
)
async def test_a_broken_plan_posted_from_a_browser_is_refused_as_check_refuses_the_file(
    tmp_path: Path, old: str, new: str
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        broken = plan_file.read_text(encoding="utf-8").replace(old, new, 1)
        with pytest.raises(ConfigError) as caught:
            parse_plan(f"config/plans/{SHOP}.yaml", broken)
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        response = await shop.post(  # a browser sends a textarea's lines ended by CR LF
            f"/numbers/{SHOP}/routing",
            data={
                "csrf": token,
                "mode": "yaml",
                "action": "save",
                "yaml": broken.replace("\n", "\r\n"),
            },
        )
        assert response.status_code == 422
        for problem in caught.value.problems:
            assert str(problem) in html.unescape(response.text), str(problem)
        await shop.aclose()


async def test_saving_writes_the_file_keeps_every_version_and_restores_one(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        changed = original.replace("ring_timeout: 20", "ring_timeout: 25")
        saved = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={
                "csrf": token,
                "mode": "yaml",
                "action": "save",
                "yaml": changed,
                "note": "longer",
            },
        )
        assert saved.status_code == 303
        assert saved.headers["location"] == f"/numbers/{SHOP}/routing?saved=2"
        assert plan_file.read_text(encoding="utf-8") == changed
        page = await shop.get(saved.headers["location"])
        assert (
            "Saved as version 2" in page.text and "as found" in page.text and "longer" in page.text
        )
        restored = await shop.post(
            f"/numbers/{SHOP}/routing/versions/1/restore", data={"csrf": token}
        )
        assert restored.headers["location"] == f"/numbers/{SHOP}/routing?saved=3"
        assert plan_file.read_text(encoding="utf-8") == original
        audit = await shop.get("/audit")
        assert "save plan" in audit.text and "restore plan" in audit.text
        await shop.aclose()


async def test_a_refused_save_keeps_the_note_for_the_history(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        broken = plan_file.read_text(encoding="utf-8").replace(
            "ring_timeout: 20", "ring_timeout: x"
        )
        response = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={
                "csrf": token,
                "mode": "yaml",
                "action": "save",
                "yaml": broken,
                "note": "为春节",
            },
        )
        assert response.status_code == 422
        assert 'name="note" maxlength="200" value="为春节"' in response.text
        await shop.aclose()


async def test_the_common_form_changes_the_default_and_forwarding(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        too_many = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={
                "csrf": token,
                "mode": "form",
                "action": "save",
                "default_target": GOOD_TARGET,
                "on_busy": "02155556667, 02155556668, 02155556669",
                "on_no_answer": "",
            },
        )
        assert too_many.status_code == 422
        assert "forwarding.on_busy" in too_many.text
        response = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={
                "csrf": token,
                "mode": "form",
                "action": "save",
                "default_target": GOOD_TARGET,
                "on_busy": "02155556667",
                "on_no_answer": "",
            },
        )
        assert response.status_code == 303
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        assert GOOD_TARGET in text
        await shop.aclose()


async def test_the_preview_shows_how_a_call_would_be_routed(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        clinic = await site.signed_in("clinic")
        token = await csrf_of(clinic, f"/numbers/{CLINIC}/routing")
        text = (site.config_dir / "plans" / f"{CLINIC}.yaml").read_text(encoding="utf-8")
        page = await clinic.post(
            f"/numbers/{CLINIC}/routing",
            data={
                "csrf": token,
                "mode": "yaml",
                "action": "preview",
                "yaml": text,
                "caller": "053188889999",
                "at": "2026-11-24T10:00",
            },
        )
        assert page.status_code == 200
        assert "call from 053188889999" in page.text
        assert "outcome: blocked" in page.text  # the clinic takes Guangdong callers only
        await clinic.aclose()


async def test_the_preview_plays_the_menus_only_while_the_account_has_the_ivr_feature(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        form = {"mode": "yaml", "action": "preview", "yaml": text, "caller": "13801650000"}

        async def previewed() -> str:
            token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
            page = await shop.post(
                f"/numbers/{SHOP}/routing",
                data={"csrf": token, **form, "at": "2026-11-23T11:00"},
            )
            assert page.status_code == 200
            return page.text

        played = await previewed()
        assert "menu &#39;main&#39;: no key, retries spent -&gt; default" in played
        assert "menus: main:default (keys pressed: none)" in played
        tariffs = site.config_dir / "tariffs.yaml"
        paid = tariffs.read_text(encoding="utf-8")
        tariffs.write_text(paid.replace("      ivr: 2025-06-01\n", ""), encoding="utf-8")
        skipped = await previewed()
        assert (
            "menu &#39;main&#39;: not played (the account has no ivr feature) -&gt; default"
            in skipped
        )
        assert "menus: main:default" not in skipped
        await shop.aclose()


async def previewed(
    site: Site, client: httpx.AsyncClient, number: str, caller: str, at: str
) -> list[str]:
    """The preview's lines for the number's plan on file, as the routing page shows them."""
    token = await csrf_of(client, f"/numbers/{number}/routing")
    text = (site.config_dir / "plans" / f"{number}.yaml").read_text(encoding="utf-8")
    form = {"csrf": token, "mode": "yaml", "action": "preview", "yaml": text}
    posted = await client.post(
        f"/numbers/{number}/routing", data={**form, "caller": caller, "at": at}
    )
    assert posted.status_code == 200
    shown = posted.text.split('data-testid="preview">')[1].split("</pre>")[0]
    return html.unescape(shown).split("\n")


async def simulated(config_dir: Path, number: str, caller: str, at: str) -> list[str]:
    """What `hotline400 simulate` prints for the same call, reading the console's store."""
    argv = ["simulate", "--config", str(config_dir), "--number", number]
    argv += ["--caller", caller, "--at", at.replace("T", " ")]
    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main(argv)

    assert await asyncio.to_thread(run) == 0
    return out.getvalue().splitlines()


def outcome_of(lines: list[str]) -> str:
    [outcome] = [line for line in lines if line.startswith("outcome:")]
    return outcome


async def test_the_preview_reads_the_numbers_status_in_the_inventory_as_simulate_does(
    tmp_path: Path,
) -> None:
    """A number the inventory holds suspended, in arrears, cancelled or frozen connects no
    call, and one in the pool is not in service at all, whatever its plan says: the preview
    answers as `hotline400 simulate` and the router do."""
    guangzhou, working_morning = "02012345678", "2026-11-23T10:00"
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        connected = await previewed(site, ops, CLINIC, guangzhou, working_morning)
        assert outcome_of(connected) == "outcome: answered (rule reception)"
        since = NOW - timedelta(days=30)
        await site.store.add_numbers(
            [
                NumberRecord(
                    CLINIC,
                    status=Status.SUSPENDED,
                    since=since,
                    subscriber="renhe",
                    suspended_since=since,
                ),
                NumberRecord(SHOP),  # still in the pool
            ],
            since,
        )
        suspended = await previewed(site, ops, CLINIC, guangzhou, working_morning)
        assert outcome_of(suspended) == "outcome: suspended (suspended)"
        assert " dial " not in "\n".join(suspended)
        pooled = await previewed(site, ops, SHOP, "13801650000", working_morning)
        assert pooled[1:] == [
            f"outcome: unknown_number, {SHOP} is available in the inventory, not in service"
        ]
        for number, caller, lines in [
            (CLINIC, guangzhou, suspended),
            (SHOP, "13801650000", pooled),
        ]:
            simulate = await simulated(site.config_dir, number, caller, working_morning)
            assert outcome_of(lines) == outcome_of(simulate)
        await ops.aclose()


async def test_the_preview_refuses_a_caller_the_pin_guard_blocks_as_simulate_does(
    tmp_path: Path,
) -> None:
    """After 5 calls that failed the clinic's PIN within the hour (router.yaml's pin_guard),
    the router refuses that caller before the prompt: so do simulate and the preview; another
    caller is still asked for the PIN."""
    guesser, patient, night = "13926001111", "13926002222", "2026-11-24T21:00"
    async with running_console(tmp_path) as site:
        guard = load_settings(site.config_dir).pin_guard
        for n in range(guard.max_failed_calls):
            await site.store.count_pin_failure(
                CLINIC,
                guesser,
                f"guess.{n}",
                NOW.replace(hour=20, minute=30 + n),
                window=timedelta(seconds=guard.window),
                limit=guard.max_failed_calls,
                block=timedelta(seconds=guard.block),
            )
        clinic = await site.signed_in("clinic")
        refused = await previewed(site, clinic, CLINIC, guesser, night)
        assert outcome_of(refused) == (
            "outcome: blocked (pin_guessing): too many failed PIN calls from this caller; "
            "refused until 2026-11-24 21:34"
        )
        asked = await previewed(site, clinic, CLINIC, patient, night)
        assert "PIN: the caller is asked for the PIN, 3 attempts" in asked
        assert outcome_of(asked) == "outcome: answered (rule duty-doctor)"
        for caller, lines in [(guesser, refused), (patient, asked)]:
            simulate = await simulated(site.config_dir, CLINIC, caller, night)
            assert outcome_of(lines) == outcome_of(simulate)
        await clinic.aclose()


async def test_the_preview_refuses_calls_past_the_balance_and_the_caps_as_simulate_does(
    tmp_path: Path,
) -> None:
    """The router reads the number's counters as a call arrives: a daily or monthly cost cap
    reached, the monthly call cap taken and a prepaid balance spent refuse the call. The
    preview reads the same counters from the store and answers as simulate does."""
    morning, tomorrow, caller = "2026-11-24T11:00", "2026-11-25T11:00", "13801650000"
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        assert outcome_of(await previewed(site, ops, SHOP, caller, morning)) == (
            "outcome: answered (rule order-hotline)"
        )
        spent = LedgerEntry(
            SHOP, NOW.replace(hour=9), Decimal("-1000.00"), LedgerKind.CALL, "long.call"
        )
        await site.store.post_ledger([spent])
        today = await previewed(site, ops, SHOP, caller, morning)
        assert outcome_of(today) == "outcome: capped (capped), playing lanhua/busy-try-later"
        assert today[1] == (
            "usage (postpaid): 2026-11 cost 1000.00 in 0 of 100000 incoming call(s), "
            "today's cost 1000.00"
        )
        assert "daily cost cap reached (1000.00 of 1000.00 yuan)" in "\n".join(today)
        next_day = await previewed(site, ops, SHOP, caller, tomorrow)
        assert outcome_of(next_day) == "outcome: answered (rule order-hotline)"

        plan = site.config_dir / "plans" / f"{SHOP}.yaml"
        text = plan.read_text(encoding="utf-8")
        plan.write_text(text.replace("monthly_calls: 100000", "monthly_calls: 2"), "utf-8")
        for _ in range(2):
            assert await site.store.reserve_call(SHOP, "2026-11", 2)
        full = await previewed(site, ops, SHOP, caller, tomorrow)
        assert "monthly call cap reached (2 of 2 incoming calls)" in "\n".join(full)
        plan.write_text(text.replace('monthly_cost: "20000.00"', 'monthly_cost: "900.00"'))
        month = await previewed(site, ops, SHOP, caller, tomorrow)
        assert "monthly cost cap reached (1000.00 of 900.00 yuan)" in "\n".join(month)

        tariffs = site.config_dir / "tariffs.yaml"
        hall = "package: business-hall\n    prepaid: "
        prepaid = tariffs.read_text(encoding="utf-8").replace(f"{hall}false", f"{hall}true")
        tariffs.write_text(prepaid, encoding="utf-8")
        guangzhou = "02012345678"
        unpaid = await previewed(site, ops, CLINIC, guangzhou, morning)
        assert unpaid[1].startswith("usage (prepaid): balance 0.00, 2026-11 cost 0.00")
        assert outcome_of(unpaid) == "outcome: suspended (arrears)"

        for number, caller_id, at, lines in [
            (SHOP, caller, tomorrow, month),
            (CLINIC, guangzhou, morning, unpaid),
        ]:
            simulate = await simulated(site.config_dir, number, caller_id, at)
            assert lines[1:] == simulate[1:]
        await ops.aclose()


async def test_the_preview_says_when_it_cannot_read_the_store(tmp_path: Path) -> None:
    """A store the console cannot read leaves the counters unknown: the router then connects
    without limits, and the preview says so instead of answering as if nothing were spent.
    The store here is a real SQLite store whose directory does not exist."""
    config = load_config(console_config(tmp_path, None))
    plan = config.plans[SHOP]
    broken = SQLiteStore(tmp_path / "no such directory" / "hotline400.db")
    lines = await preview(plan, "13801650000", NOW.replace(hour=11), config, broken, set())
    assert lines[1].startswith("usage: unreadable (")
    assert lines[1].endswith("); the router connects without limits then")
    assert outcome_of(lines) == "outcome: answered (rule order-hotline)"


async def test_call_records_search_and_csv_export(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("c1", SHOP, NOW - timedelta(hours=2)),
                *a_call(
                    "c2", SHOP, NOW - timedelta(hours=1), Outcome.NOANSWER, caller="=HYPERLINK(1)"
                ),
                *a_call("c3", SHOP, NOW - timedelta(days=3), province="广东", city="广州"),
            ]
        )
        shop = await site.signed_in("shop")
        unanswered = await shop.get("/calls?outcome=unanswered")
        assert "c2" in unanswered.text and "/calls/c1" not in unanswered.text
        by_caller = await shop.get("/calls?caller=%2B86+138-0531-0001")  # 13805310001
        assert "/calls/c1" in by_caller.text and "/calls/c2" not in by_caller.text
        by_region = await shop.get("/calls?region=广东")
        assert "/calls/c3" in by_region.text and "/calls/c1" not in by_region.text
        by_day = await shop.get(f"/calls?since={NOW.date()}&until={NOW.date()}")
        assert "/calls/c1" in by_day.text and "/calls/c3" not in by_day.text
        bad = await shop.get("/calls?since=2026-02-30")
        assert "since: &#39;2026-02-30&#39; is not a date like 2026-11-30" in bad.text
        export = await shop.get(f"/calls.csv?number={SHOP}")
        assert export.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert [row["call_id"] for row in rows] == ["c2", "c1", "c3"]
        assert rows[0]["caller_raw"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
        assert rows[1]["total"] == "0.35" and rows[1]["province"] == "山东"
        detail = await shop.get("/calls/c1")
        assert "caller 0.15 + subscriber 0.20 = 0.35 yuan" in detail.text
        await shop.aclose()


async def test_a_csv_export_longer_than_a_page_has_every_call_once_in_order(
    tmp_path: Path,
) -> None:
    """The CSV is read a page at a time as it is sent (EXPORT_BATCH calls): pages of calls
    started at the same instant, a page ending among them, still give every call once,
    newest first and by call id within an instant, and the audit log the count."""
    calls = 2 * EXPORT_BATCH + 1
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                op
                for index in range(calls)
                for op in a_call(f"p{index:04d}", SHOP, NOW - timedelta(minutes=index // 7))
            ]
        )
        shop = await site.signed_in("shop")
        export = await shop.get(f"/calls.csv?number={SHOP}")
        rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
        expected = sorted(
            (f"p{index:04d}" for index in range(calls)),
            key=lambda call_id: (int(call_id[1:]) // 7, -int(call_id[1:])),
        )
        assert [row["call_id"] for row in rows] == expected
        [download] = [e for e in await site.store.audit_log() if e.target == "calls.csv"]
        assert download.detail == f"{calls} calls; number {SHOP}"
        await shop.aclose()


async def test_a_call_stored_as_the_csv_export_starts_is_in_the_file_and_the_audits_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit entry of a CSV export counts the calls written into it: a call stored after
    the export was asked for, before its first page is read, is in the file (the newest
    call) and in the count, not left out of a count taken before the pages."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                op
                for index in range(3)
                for op in a_call(f"c{index}", SHOP, NOW - timedelta(hours=index + 1))
            ]
        )
        read_ids = site.store.call_ids

        async def a_call_stored_before_the_first_page(*args: Any, **kwargs: Any) -> list[str]:
            if kwargs.get("limit") == EXPORT_BATCH and kwargs.get("older_than") is None:
                await site.store.apply(a_call("late", SHOP, NOW - timedelta(minutes=1)))
            return await read_ids(*args, **kwargs)

        shop = await site.signed_in("shop")
        monkeypatch.setattr(site.store, "call_ids", a_call_stored_before_the_first_page)
        export = await shop.get(f"/calls.csv?number={SHOP}")
        rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert [row["call_id"] for row in rows] == ["late", "c0", "c1", "c2"]
        [download] = [e for e in await site.store.audit_log() if e.target == "calls.csv"]
        assert download.detail == f"4 calls; number {SHOP}"
        await shop.aclose()


async def test_a_csv_export_the_client_stops_is_audited_with_the_calls_sent_as_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download stopped before its end (the browser's Cancel, a lost connection) is still
    in the audit log, with the calls handed to the connection before it stopped (the
    client may have received fewer, never more) and said to be cut short: what an operator
    answering "what did this user take?" needs, rather than the search's full count or
    nothing. The export is held before its second page while the client goes away."""
    calls = 2 * EXPORT_BATCH + 1
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                op
                for index in range(calls)
                for op in a_call(f"p{index:04d}", SHOP, NOW - timedelta(minutes=index))
            ]
        )
        read_ids = site.store.call_ids
        second_page_asked, go_on = asyncio.Event(), asyncio.Event()

        async def held_before_the_second_page(*args: Any, **kwargs: Any) -> list[str]:
            if kwargs.get("older_than") is not None:
                second_page_asked.set()
                await go_on.wait()
            return await read_ids(*args, **kwargs)

        shop = await site.signed_in("shop")
        monkeypatch.setattr(site.store, "call_ids", held_before_the_second_page)
        try:
            async with shop.stream("GET", f"/calls.csv?number={SHOP}") as export:
                assert export.status_code == 200
                received = b""
                async for chunk in export.aiter_raw():
                    received += chunk
                    if second_page_asked.is_set():
                        break
                await asyncio.wait_for(second_page_asked.wait(), 10)
            # leaving the block unread closes the connection
            entries = await _audit_entries_for(site, "calls.csv")
        finally:
            go_on.set()
        assert [e.detail for e in entries] == [
            f"{EXPORT_BATCH} calls, download cut short; number {SHOP}"
        ]
        assert received.decode("utf-8-sig").count(f",{SHOP},") <= EXPORT_BATCH
        await shop.aclose()


async def test_an_excel_export_the_client_gives_up_on_is_audited_as_cut_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of a workbook is sent until it is whole: a client (or a proxy at its read
    timeout) that gives up while it is written took nothing usable, and the audit log says
    so instead of recording the workbook as downloaded."""
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("c1", SHOP, NOW - timedelta(hours=1)))
        read_calls = calls_view.calls_of
        writing, go_on = asyncio.Event(), asyncio.Event()

        async def held_while_the_workbook_is_written(*args: Any) -> Any:
            writing.set()
            await go_on.wait()
            return await read_calls(*args)

        shop = await site.signed_in("shop")
        monkeypatch.setattr(calls_view, "calls_of", held_while_the_workbook_is_written)
        try:
            async with shop.stream("GET", f"/calls.xlsx?number={SHOP}") as export:
                assert export.status_code == 200
                await asyncio.wait_for(writing.wait(), 10)
            # leaving the block unread closes the connection
            entries = await _audit_entries_for(site, "calls.xlsx")
        finally:
            go_on.set()
        assert [e.detail for e in entries] == [f"1 call, download cut short; number {SHOP}"]
        whole = await shop.get(f"/calls.xlsx?number={SHOP}")
        assert whole.status_code == 200
        entries = await _audit_entries_for(site, "calls.xlsx")  # the console's clock stands
        assert sorted(e.detail for e in entries) == [
            f"1 call, download cut short; number {SHOP}",
            f"1 call; number {SHOP}",
        ]
        await shop.aclose()


async def test_a_csv_export_whose_audit_entry_cannot_be_written_is_logged_with_its_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The audit entry is written once the calls have gone: a store that cannot take it
    then (here its audit table is gone) cannot call the download back, so the console's log
    says who took how many calls, and the file is whole."""
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("c1", SHOP, NOW - timedelta(hours=1)))
        shop = await site.signed_in("shop")
        with sqlite3.connect(tmp_path / "var" / "hotline400.db") as db:
            db.execute("DROP TABLE audit_log")
        export = await shop.get(f"/calls.csv?number={SHOP}")
        rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
        assert [row["call_id"] for row in rows] == ["c1"]
        [logged] = [r for r in caplog.records if r.name == "hotline400.console"]
        assert logged.levelname == "ERROR"
        assert logged.getMessage().startswith("shop downloaded 1 call as CSV, not audited: ")
        await shop.aclose()


async def _audit_entries_for(site: Site, target: str, wait: float = 10) -> list[Any]:
    """The audit entries of `target`, once there are any (or after `wait` seconds): a
    download's entry is written when its stream ends, which for a stopped one is when the
    server has noticed."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        entries = [e for e in await site.store.audit_log() if e.target == target]
        if entries or asyncio.get_running_loop().time() > deadline:
            return entries
        await asyncio.sleep(0.05)


async def test_the_call_export_opens_in_excel_with_its_chinese_text(tmp_path: Path) -> None:
    """Excel reads a CSV without a byte-order mark in the system's code page (GBK on a
    Chinese Windows), turning 山东 into mojibake: the export starts with UTF-8's BOM."""
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("c1", SHOP, NOW - timedelta(hours=2)))
        shop = await site.signed_in("shop")
        export = await shop.get(f"/calls.csv?number={SHOP}")
        assert export.content.startswith(codecs.BOM_UTF8 + b"call_id,number,")
        assert export.content.count(codecs.BOM_UTF8) == 1
        assert ",山东,济南,0531," in export.content.decode("utf-8-sig")
        await shop.aclose()


async def test_call_records_export_as_an_excel_workbook_with_typed_cells(tmp_path: Path) -> None:
    """The Excel export holds the CSV's columns and calls, each cell typed: caller numbers
    and area codes text (0531 keeps its zero), charges numbers, times local date-times."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("c1", SHOP, NOW - timedelta(hours=2), caller="01062345678"),
                *a_call(
                    "c2", SHOP, NOW - timedelta(hours=1), Outcome.NOANSWER, caller="=HYPERLINK(1)"
                ),
                *a_call("c3", SHOP, NOW - timedelta(days=3), province="广东", city="广州"),
            ]
        )
        shop = await site.signed_in("shop")
        export = await shop.get(f"/calls.xlsx?number={SHOP}")
        assert export.headers["content-type"] == XLSX_MEDIA_TYPE
        assert export.headers["content-disposition"] == (
            f'attachment; filename="calls-{NOW:%Y%m%d-%H%M}.xlsx"'
        )
        sheet = read_workbook(export.content)["calls"]
        csv_export = await shop.get(f"/calls.csv?number={SHOP}")
        csv_header = next(csv.reader(io.StringIO(csv_export.content.decode("utf-8-sig"))))
        zoned = {"started_at", "answered_at", "ended_at"}
        assert sheet.header == [f"{n} (Asia/Shanghai)" if n in zoned else n for n in csv_header]
        rows = {row["call_id"].value: row for row in sheet.rows}
        assert list(rows) == ["c2", "c1", "c3"]
        answered = rows["c1"]
        assert (answered["caller"], answered["area_code"]) == (
            Cell("01062345678", "@"),
            Cell("0531", "@"),
        )
        assert (answered["province"].value, answered["city"].value) == ("山东", "济南")
        assert answered["caller_share"] == Cell(0.15, "0.00")
        assert answered["total"] == Cell(0.35, "0.00")
        assert answered["billable_seconds"] == Cell(60, "0")
        assert answered["started_at (Asia/Shanghai)"].as_time() == datetime(2026, 11, 24, 13)
        assert rows["c2"]["caller_raw"] == Cell("=HYPERLINK(1)", "@", quote_prefix=True)
        by_region = read_workbook((await shop.get("/calls.xlsx?region=广东")).content)
        assert [row["call_id"].value for row in by_region["calls"].rows] == ["c3"]
        await shop.aclose()


async def test_the_calls_page_offers_both_exports_of_its_search(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        page = (await shop.get(f"/calls?number={SHOP}&outcome=unanswered")).text
        query = html.escape(f"number={SHOP}&outcome=unanswered")
        assert f'href="/calls.csv?{query}" download>Export CSV</a>' in page
        # not a `download` link: a search too big for Excel answers with a page to read
        assert f'href="/calls.xlsx?{query}" title="Excel: up to 50,000 calls">Export Excel' in page
        await shop.aclose()


async def test_an_excel_export_of_more_calls_than_configured_says_how_to_have_them(
    tmp_path: Path,
) -> None:
    """A workbook is written whole before its first byte is sent: past router.yaml's
    console_excel_calls that takes longer than a reverse proxy waits, so such a search gets
    a page saying so, offering the CSV of the same search (sent as it is read) and a
    narrower search; nothing is downloaded, so the audit log has nothing to write down. A
    search within the limit downloads as ever. The command that writes any number of calls
    as a workbook runs on the server: only the operator is shown it (next test)."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("c1", SHOP, NOW - timedelta(days=2)),
                *a_call("c2", SHOP, NOW - timedelta(hours=2)),
                *a_call("c3", SHOP, NOW - timedelta(hours=1), Outcome.NOANSWER),
            ]
        )
        router_yaml = site.config_dir / "router.yaml"
        text = router_yaml.read_text(encoding="utf-8")
        limited = re.sub(r"^console_excel_calls: .*$", "console_excel_calls: 2", text, flags=re.M)
        router_yaml.write_text(limited, encoding="utf-8")
        shop = await site.signed_in("shop")
        refused = await shop.get(f"/calls.xlsx?number={SHOP}")
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("text/html")
        assert "content-disposition" not in refused.headers
        assert "This search finds more than <strong" in refused.text
        assert f'href="/calls.csv?number={SHOP}" download>Export CSV</a>' in refused.text
        assert f'href="/calls?number={SHOP}">narrow the search</a>' in refused.text

        today = await shop.get(f"/calls.xlsx?number={SHOP}&since={NOW.date()}")
        assert today.headers["content-disposition"].startswith("attachment;")
        rows = read_workbook(today.content)["calls"].rows
        assert [row["call_id"].value for row in rows] == ["c3", "c2"]
        page = (await shop.get(f"/calls?number={SHOP}")).text
        assert 'title="Excel: up to 2 calls">Export Excel</a>' in page
        downloads = [e.detail for e in await site.store.audit_log() if e.target == "calls.xlsx"]
        assert downloads == [f"2 calls; number {SHOP}, since {NOW.date()}"]
        await shop.aclose()


async def test_only_the_operator_is_shown_the_command_for_a_workbook_too_big_to_download(
    tmp_path: Path,
) -> None:
    """`hotline400 cdr --format xlsx` runs on the server, where only the operator works: a
    subscriber's users are told instead that their operator can write such a workbook, or
    to narrow the search by its days to the limit, and offered the search's CSV, as the
    operator is."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                op
                for index in range(3)
                for op in a_call(f"c{index}", SHOP, NOW - timedelta(hours=index + 1))
            ]
        )
        router_yaml = site.config_dir / "router.yaml"
        text = router_yaml.read_text(encoding="utf-8")
        limited = re.sub(r"^console_excel_calls: .*$", "console_excel_calls: 2", text, flags=re.M)
        router_yaml.write_text(limited, encoding="utf-8")
        query = f"number={SHOP}&since={NOW.date() - timedelta(days=7)}"
        command = (
            "hotline400 cdr --format xlsx --output calls.xlsx"
            f" --number {SHOP} --since {NOW.date() - timedelta(days=7)}"
        )
        csv_link = f'href="/calls.csv?{html.escape(query)}" download>Export CSV</a>'
        for name in ("shop", "shopstaff", "ops"):
            user = await site.signed_in(name)
            refused = await user.get(f"/calls.xlsx?{query}")
            assert refused.status_code == 422, name
            page = html.unescape(refused.text)
            assert csv_link in refused.text, name
            if name == "ops":
                assert command in page
                assert 'data-testid="excel-command"' in page
                assert "Your operator" not in page
            else:
                assert "hotline400 cdr" not in page and "excel-command" not in page, name
                assert "on the server" not in page, name
                told = re.search(r'<p data-testid="excel-ask-operator">(.*?)</p>', page, re.S)
                assert told, name
                words = " ".join(re.sub(r"<[^>]+>", "", told.group(1)).split())
                assert words == (
                    "Your operator can write every call of this search into a workbook,"
                    " however many: ask them for it. Or narrow the search to fewer days, so that"
                    " it finds 2 calls or fewer, and export those as Excel here."
                ), name
            await user.aclose()
        assert not [e for e in await site.store.audit_log() if e.target == "calls.xlsx"]


async def test_a_municipal_caller_is_placed_once_on_every_page(tmp_path: Path) -> None:
    """上海 is province and city at once: 'Shanghai Shanghai' reads as a fault."""
    async with running_console(tmp_path) as site:
        started = NOW - timedelta(hours=1)
        await site.store.apply(a_call("sh", SHOP, started, province="上海", city="上海"))
        shop = await site.signed_in("shop")
        day = started.date()
        pages = [
            await shop.get("/calls"),
            await shop.get("/calls/sh"),
            await shop.get(f"/reports?number={SHOP}&from={day}&to={day}"),
        ]
        for page in pages:
            assert "上海" in page.text
            assert re.search(r"上海\W*上海", page.text) is None, page.url
        await shop.aclose()


async def test_a_download_of_call_records_is_written_in_the_audit_log(tmp_path: Path) -> None:
    """Call records are personal data: who downloaded which, and how many, is on the audit
    page, as a recording played is."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("c1", SHOP, NOW - timedelta(hours=2)),
                *a_call("c2", SHOP, NOW - timedelta(hours=1), Outcome.NOANSWER),
            ]
        )
        staff = await site.signed_in("shopstaff")
        query = f"number={SHOP}&outcome=unanswered&since={NOW.date()}"
        assert (await staff.get(f"/calls.csv?{query}")).status_code == 200
        assert (await staff.get("/calls.csv")).status_code == 200
        assert (await staff.get(f"/calls.xlsx?{query}")).status_code == 200
        downloads = [
            (e.actor, e.action, e.target, e.detail)
            for e in await site.store.audit_log()
            if e.action == "download call records"
        ]
        assert sorted(downloads) == [
            (
                "shopstaff",
                "download call records",
                "calls.csv",
                f"1 call; number {SHOP}, since 2026-11-24, outcome unanswered",
            ),
            ("shopstaff", "download call records", "calls.csv", "2 calls; no filter"),
            (
                "shopstaff",
                "download call records",
                "calls.xlsx",
                f"1 call; number {SHOP}, since 2026-11-24, outcome unanswered",
            ),
        ]
        shop = await site.signed_in("shop")
        audit = (await shop.get("/audit")).text
        assert f"1 call; number {SHOP}, since 2026-11-24, outcome unanswered" in audit
        await staff.aclose()
        await shop.aclose()


async def test_reports_count_calls_by_local_day_and_hour_and_flag_night_bursts(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        night = NOW.replace(hour=3, minute=10)
        ops = [op for i in range(12) for op in a_call(f"n{i}", SHOP, night + timedelta(minutes=i))]
        ops += a_call("d1", SHOP, NOW.replace(hour=0, minute=30) - timedelta(days=1))
        await site.store.apply(ops)
        shop = await site.signed_in("shop")
        page = await shop.get(f"/reports?number={SHOP}&from=2026-11-23&to=2026-11-24")
        assert "late-night burst" in page.text
        assert "12 calls between 03:00 and 04:00" in page.text
        assert '<td>2026-11-23</td><td class="num">1</td>' in page.text
        assert '<td>2026-11-24</td><td class="num">12</td>' in page.text
        await shop.aclose()


async def test_a_report_of_days_without_calls_says_so_once_instead_of_empty_charts_and_tables(
    tmp_path: Path,
) -> None:
    """One sentence says there were no calls: no empty charts, outcomes or unanswered table
    repeat it, and the form to choose other days stays."""
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("d1", SHOP, NOW))
        shop = await site.signed_in("shop")
        empty = (await shop.get(f"/reports?number={SHOP}&from=2026-11-20&to=2026-11-22")).text
        assert empty.count("No calls") == 1
        assert '<p class="muted" data-testid="no-calls">No calls in these days.</p>' in empty
        assert "<canvas" not in empty and "Where callers are" not in empty
        assert "<h2>Outcomes</h2>" not in empty and "Latest unanswered calls" not in empty
        assert '<form method="get" action="/reports"' in empty
        assert f"<option selected>{SHOP}</option>" in empty
        assert 'value="2026-11-20"' in empty and 'value="2026-11-22"' in empty
        busy = (await shop.get(f"/reports?number={SHOP}&from=2026-11-24&to=2026-11-24")).text
        assert "No calls in these days." not in busy
        assert 'id="chart-daily"' in busy and "Where callers are" in busy
        assert "<h2>Outcomes</h2>" in busy and "<h2>Latest unanswered calls</h2>" in busy
        await shop.aclose()


async def test_the_dashboard_hears_of_a_call_as_soon_as_it_ends(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        async with shop.stream("GET", "/events") as events:
            lines = events.aiter_lines()
            assert await anext(lines) == "retry: 3000"
            await site.store.apply(a_call("live.1", SHOP, NOW))
            async with asyncio.timeout(5):
                while await anext(lines) != "event: calls":
                    pass
        summary = await shop.get("/dashboard/summary")
        assert 'data-testid="calls-today">1<' in summary.text
        await shop.aclose()


async def test_the_console_works_the_same_on_postgresql(tmp_path: Path) -> None:
    async with scratch_schema() as url, running_console(tmp_path, url) as site:
        await site.store.apply(a_call("pg.1", SHOP, NOW))
        shop = await site.signed_in("shop")
        assert "/calls/pg.1" in (await shop.get("/calls")).text
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        saved = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={"csrf": token, "mode": "yaml", "action": "save", "yaml": text},
        )
        assert saved.headers["location"].endswith("saved=2")
        report = await shop.get(f"/reports?number={SHOP}&from=2026-11-24&to=2026-11-24")
        assert '<td>2026-11-24</td><td class="num">1</td>' in report.text
        await shop.aclose()


@pytest.mark.parametrize("path", ["/", "/calls", "/reports", f"/numbers/{SHOP}/money"])
async def test_each_page_renders_for_the_operator(tmp_path: Path, path: str) -> None:
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        response = await ops.get(path)
        assert response.status_code == 200
        assert "hotline400" in response.text
        await ops.aclose()


async def test_a_save_based_on_a_plan_changed_since_is_refused_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """Two people open the same plan; the second to save would overwrite the first's change
    without having seen it, so that save is refused, and the page keeps the text."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{CLINIC}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        routing = f"/numbers/{CLINIC}/routing"
        ops, clinic = await site.signed_in("ops"), await site.signed_in("clinic")
        forms = {}
        for name, client in (("ops", ops), ("clinic", clinic)):
            page = (await client.get(routing)).text
            [csrf] = re.findall(r'name="csrf" value="([0-9a-f]+)"', page)[:1]
            [base] = re.findall(r'name="base" value="([0-9a-f]+)"', page)[:1]
            forms[name] = {"csrf": csrf, "base": base, "mode": "yaml", "action": "save"}
        first = original.replace("ring_timeout: 25", "ring_timeout: 30")
        assert (await ops.post(routing, data={**forms["ops"], "yaml": first})).status_code == 303
        second = original.replace("ring_timeout: 25", "ring_timeout: 20")
        late = await clinic.post(routing, data={**forms["clinic"], "yaml": second})
        assert late.status_code == 409
        assert "the plan was changed by someone else since this page was opened" in late.text
        assert "ring_timeout: 20" in late.text  # the refused text is still on the page
        assert plan_file.read_text(encoding="utf-8") == first
        # Saved again from the page that said so, it is based on the plan as it now is.
        [base] = re.findall(r'name="base" value="([0-9a-f]+)"', late.text)[:1]
        again = await clinic.post(routing, data={**forms["clinic"], "base": base, "yaml": second})
        assert again.status_code == 303
        assert plan_file.read_text(encoding="utf-8") == second
        await ops.aclose()
        await clinic.aclose()


async def test_a_restore_asked_from_a_page_opened_before_another_save_is_refused(
    tmp_path: Path,
) -> None:
    """A restore from a page opened before someone else's save would overwrite that save
    unseen, as a save would: it is refused, the file keeps the later save, and the page
    shows the plan as it now is, from where the restore can be asked again."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{CLINIC}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        routing = f"/numbers/{CLINIC}/routing"
        ops, clinic = await site.signed_in("ops"), await site.signed_in("clinic")
        form = {"csrf": await csrf_of(clinic, routing), "mode": "yaml", "action": "save"}
        longer = original.replace("ring_timeout: 25", "ring_timeout: 30")
        assert (await clinic.post(routing, data={**form, "yaml": longer})).status_code == 303
        opened = (await ops.get(routing)).text
        [csrf] = re.findall(r'name="csrf" value="([0-9a-f]+)"', opened)[:1]
        restore_form = re.search(r'action="[^"]*/versions/1/restore">(.*?)</form>', opened)
        assert restore_form is not None
        [base] = re.findall(r'name="base" value="([0-9a-f]+)"', restore_form.group(1))
        later = original.replace("ring_timeout: 25", "ring_timeout: 35")
        assert (await clinic.post(routing, data={**form, "yaml": later})).status_code == 303
        late = await ops.post(f"{routing}/versions/1/restore", data={"csrf": csrf, "base": base})
        assert late.status_code == 409
        assert "the plan was changed by someone else since this page was opened" in late.text
        assert "version 1 was not restored" in late.text
        assert "ring_timeout: 35" in late.text
        assert plan_file.read_text(encoding="utf-8") == later
        assert [v.note for v in await site.store.plan_versions(CLINIC)] == ["", "", "as found"]
        [base] = re.findall(r'name="base" value="([0-9a-f]+)"', late.text)[:1]
        again = await ops.post(f"{routing}/versions/1/restore", data={"csrf": csrf, "base": base})
        assert again.status_code == 303
        assert plan_file.read_text(encoding="utf-8") == original
        await ops.aclose()
        await clinic.aclose()


async def test_a_plan_edited_outside_the_console_stays_in_the_history_once_replaced(
    tmp_path: Path,
) -> None:
    """An operator edits the file by hand between two console saves; the next save, and a
    restore, first record the file as found, so the hand edit can be restored."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        form = {"csrf": await csrf_of(shop, routing), "mode": "yaml", "action": "save"}
        console_edit = original.replace("ring_timeout: 20", "ring_timeout: 25")
        assert (await shop.post(routing, data={**form, "yaml": console_edit})).status_code == 303
        by_hand = console_edit.replace("ring_timeout: 25", "ring_timeout: 30")
        plan_file.write_text(by_hand, encoding="utf-8")
        later = by_hand.replace("ring_timeout: 30", "ring_timeout: 35")
        saved = await shop.post(routing, data={**form, "yaml": later})
        assert saved.headers["location"] == f"{routing}?saved=4"
        versions = await site.store.plan_versions(SHOP)
        assert [(v.version, v.saved_by, v.note) for v in versions[:2]] == [
            (4, "shop", ""),
            (3, "(file)", "as found"),
        ]
        assert versions[1].source == by_hand
        plan_file.write_text(by_hand + "# another hand edit\n", encoding="utf-8")
        restored = await shop.post(f"{routing}/versions/3/restore", data={"csrf": form["csrf"]})
        assert restored.headers["location"] == f"{routing}?saved=6"
        found = await site.store.plan_version(SHOP, 5)
        assert found is not None and found.source.endswith("# another hand edit\n")
        assert plan_file.read_text(encoding="utf-8") == by_hand
        await shop.aclose()


async def test_a_save_records_no_as_found_version_when_the_file_is_the_last_saved(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        form = {"csrf": await csrf_of(shop, routing), "mode": "yaml", "action": "save"}
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        for timeout in (25, 30):
            changed = text.replace("ring_timeout: 20", f"ring_timeout: {timeout}")
            assert (await shop.post(routing, data={**form, "yaml": changed})).status_code == 303
        notes = [v.note for v in await site.store.plan_versions(SHOP)]
        assert notes == ["", "", "as found"]
        await shop.aclose()


@pytest.mark.parametrize(
    ("forwarding", "reported"),
    [
        ('forwarding: ["02155556667"]\n', "24 forwarding: "),
        ('forwarding:\n  on_busy: "02155556667"\n', "25 forwarding.on_busy: must be a list"),
    ],
)
async def test_forwarding_the_form_cannot_show_is_reported_with_the_text_kept(
    tmp_path: Path, forwarding: str, reported: str
) -> None:
    """Forwarding written as a list, or a single number where a list belongs, is the plan's
    problem, shown at its line: the page neither fails nor drops the text typed, and does
    not offer the common-settings form (it would show a number's digits as numbers)."""
    async with running_console(tmp_path) as site:
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        original = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        text = re.sub(r"^forwarding:\n(  .*\n)*", forwarding, original, flags=re.M)
        assert text != original
        for action in ("preview", "save"):
            response = await shop.post(
                routing,
                data={
                    "csrf": await csrf_of(shop, routing),
                    "mode": "yaml",
                    "action": action,
                    "yaml": text,
                },
            )
            assert response.status_code == 422
            assert f"config/plans/{SHOP}.yaml:{reported}" in response.text
            assert "# Lanhua Online" in response.text and "02155556667" in response.text
            assert 'id="common-form"' not in response.text  # it would show no true numbers
        await shop.aclose()


async def test_the_form_posted_over_a_plan_it_can_no_longer_edit_is_refused_keeping_the_input(
    tmp_path: Path,
) -> None:
    """The common-settings form was opened on a simple plan; before it is posted the file
    became one the form cannot edit (here, YAML left broken by hand). The save is refused as
    a conflict, the file is untouched, and the settings typed are on the page."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        token = await csrf_of(shop, routing)
        plan_file.write_text("number: [\n", encoding="utf-8")
        response = await shop.post(
            routing,
            data={
                "csrf": token,
                "mode": "form",
                "action": "save",
                "default_target": GOOD_TARGET,
                "on_busy": "02155556667",
                "on_no_answer": "",
            },
        )
        assert response.status_code == 409
        assert "no longer has the shape the common settings edit" in response.text
        assert f"default destination {GOOD_TARGET}, when busy 02155556667" in response.text
        assert plan_file.read_text(encoding="utf-8") == "number: [\n"
        await shop.aclose()


async def test_a_plan_sent_with_a_browsers_crlf_line_endings_is_written_with_lf(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        changed = plan_file.read_text(encoding="utf-8").replace(
            "ring_timeout: 20", "ring_timeout: 25"
        )
        saved = await shop.post(
            routing,
            data={
                "csrf": await csrf_of(shop, routing),
                "mode": "yaml",
                "action": "save",
                "yaml": changed.replace("\n", "\r\n"),
            },
        )
        assert saved.status_code == 303
        assert plan_file.read_bytes() == changed.encode("utf-8")
        [latest, *_] = await site.store.plan_versions(SHOP)
        assert latest.source == changed
        await shop.aclose()


async def test_only_the_operator_changes_a_plans_status(tmp_path: Path) -> None:
    """The operator puts a number in arrears in its plan; its subscriber can neither save
    the plan back to active nor restore the active version, and the refusals are audited."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{CLINIC}.yaml"
        active = plan_file.read_text(encoding="utf-8")
        arrears = active.replace("status: active", "status: arrears")
        routing = f"/numbers/{CLINIC}/routing"
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, routing)
        form = {"csrf": token, "mode": "yaml", "action": "save"}
        saved = await ops.post(routing, data={**form, "yaml": arrears})
        assert saved.headers["location"] == f"{routing}?saved=2"  # 1: the file as found
        clinic = await site.signed_in("clinic")
        form["csrf"] = await csrf_of(clinic, routing)
        lifted = await clinic.post(routing, data={**form, "yaml": active})
        assert lifted.status_code == 403
        assert "only the operator changes a number&#39;s status" in lifted.text
        assert f"{CLINIC} is arrears and this plan would make it active" in lifted.text
        dropped = await clinic.post(
            routing, data={**form, "yaml": arrears.replace("status: arrears\n", "")}
        )
        assert dropped.status_code == 403  # no status at all is active
        restored = await clinic.post(f"{routing}/versions/1/restore", data={"csrf": form["csrf"]})
        assert restored.status_code == 403
        assert "only the operator changes a number&#39;s status" in restored.text
        assert plan_file.read_text(encoding="utf-8") == arrears
        # Everything else of the plan is still the subscriber's to change.
        longer = arrears.replace("ring_timeout: 25", "ring_timeout: 30")
        assert (await clinic.post(routing, data={**form, "yaml": longer})).status_code == 303
        assert plan_file.read_text(encoding="utf-8") == longer
        # The common-settings form keeps the status as the file has it.
        common = await clinic.post(
            routing,
            data={**form, "mode": "form", "default_target": GOOD_TARGET, "on_busy": ""},
        )
        assert common.status_code == 303
        assert "status: arrears" in plan_file.read_text(encoding="utf-8")
        back = await ops.post(f"{routing}/versions/1/restore", data={"csrf": token})
        assert back.status_code == 303
        assert plan_file.read_text(encoding="utf-8") == active
        refusals = [
            (entry.actor, entry.action, entry.target)
            for entry in await site.store.audit_log()
            if entry.action.startswith("refused")
        ]
        assert sorted(refusals) == [
            ("clinic", "refused: restore plan", CLINIC),
            ("clinic", "refused: save plan", CLINIC),
            ("clinic", "refused: save plan", CLINIC),
        ]
        await ops.aclose()
        await clinic.aclose()


async def test_staff_preview_a_plan_but_do_not_save_it(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        staff = await site.signed_in("shopstaff")
        routing = f"/numbers/{SHOP}/routing"
        page = await staff.get(routing)
        assert 'value="preview">Preview<' in page.text
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        form = {"csrf": await csrf_of(staff, routing), "mode": "yaml", "yaml": text}
        preview = await staff.post(routing, data={**form, "action": "preview"})
        assert preview.status_code == 200
        assert "call from 053188889999" in preview.text
        changed = text.replace("ring_timeout: 20", "ring_timeout: 25")
        save = await staff.post(routing, data={**form, "yaml": changed, "action": "save"})
        assert save.status_code == 404
        assert (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8") == text
        await staff.aclose()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/calls?until=9999-12-31", "until: &#39;9999-12-31&#39; is not a day between"),
        ("/calls?since=0001-01-01", "since: &#39;0001-01-01&#39; is not a day between"),
        ("/reports?to=9999-12-31", "to: &#39;9999-12-31&#39; is not a day between"),
        ("/reports?from=9999-12-31&to=9999-12-31", "from: &#39;9999-12-31&#39; is not a day"),
        ("/reports?from=0001-01-01", "from: &#39;0001-01-01&#39; is not a day between"),
    ],
)
async def test_days_out_of_range_are_a_problem_like_any_bad_date(
    tmp_path: Path, path: str, problem: str
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        page = await shop.get(path)
        assert page.status_code == 200
        assert problem in page.text
        await shop.aclose()


@pytest.mark.parametrize("export", ["/calls.csv", "/calls.xlsx"])
async def test_an_export_with_a_bad_date_exports_nothing(tmp_path: Path, export: str) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("c1", SHOP, NOW))
        shop = await site.signed_in("shop")
        for query in ("until=9999-12-31", "since=2026-02-30"):
            answer = await shop.get(f"{export}?{query}")
            assert answer.status_code == 400
            assert "c1" not in answer.text and query.split("=")[0] in answer.text
        assert (await shop.get(f"{export}?number={CLINIC}&until=x")).status_code == 404
        await shop.aclose()


@pytest.mark.parametrize("version", ["9223372036854775807", "9223372036854775808", "9" * 20])
async def test_a_version_no_store_holds_is_not_found(tmp_path: Path, version: str) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        versions = f"/numbers/{SHOP}/routing/versions"
        assert (await shop.get(f"{versions}/{version}")).status_code == 404
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        restore = await shop.post(f"{versions}/{version}/restore", data={"csrf": token})
        assert restore.status_code == 404
        await shop.aclose()


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        ("0001-01-01T00:00", "2026-11-24 15:00"),  # out of range: now
        ("9999-12-31T23:59", "2026-11-24 15:00"),
        ("1900-01-01T00:00", "1900-01-01 00:00"),
        ("9998-12-31T23:59", "9998-12-31 23:59"),
    ],
)
async def test_the_preview_of_a_time_out_of_range_is_of_now(
    tmp_path: Path, at: str, shown: str
) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        routing = f"/numbers/{SHOP}/routing"
        text = (site.config_dir / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        form = {"csrf": await csrf_of(shop, routing), "mode": "yaml", "yaml": text, "at": at}
        page = await shop.post(routing, data={**form, "action": "preview"})
        assert page.status_code == 200
        preview = page.text.split('data-testid="preview">')[1].split("</pre>")[0]
        assert preview.startswith("call from 053188889999") and shown in preview.split("\n")[0]
        await shop.aclose()


async def test_only_the_operator_chooses_the_key_a_numbers_crm_events_are_signed_with(
    tmp_path: Path,
) -> None:
    """`crm.secret_env` names a variable of the router's environment: a subscriber choosing
    it would have the router sign its events with the console's secret, the database's
    password or another subscriber's CRM key, and send them where it likes."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        assert "secret_env: LANHUA_CRM_KEY" in original
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        form = {"csrf": await csrf_of(shop, routing), "mode": "yaml", "action": "save"}
        for key in ("HOTLINE400_CONSOLE_SECRET", "RENHE_CRM_KEY"):
            chosen = original.replace("secret_env: LANHUA_CRM_KEY", f"secret_env: {key}")
            refused = await shop.post(routing, data={**form, "yaml": chosen})
            assert refused.status_code == 403, key
            assert "only the operator chooses" in refused.text
        assert plan_file.read_text(encoding="utf-8") == original
        # The CRM's address and events stay the subscriber's to change.
        moved = original.replace("crm.lanhua.example", "crm2.lanhua.example")
        assert (await shop.post(routing, data={**form, "yaml": moved})).status_code == 303
        operator = await site.signed_in("ops")
        form["csrf"] = await csrf_of(operator, routing)
        rekeyed = moved.replace("secret_env: LANHUA_CRM_KEY", "secret_env: LANHUA_CRM_KEY_2")
        assert (await operator.post(routing, data={**form, "yaml": rekeyed})).status_code == 303
        assert plan_file.read_text(encoding="utf-8") == rekeyed
        await shop.aclose()
        await operator.aclose()


async def test_a_crm_url_on_the_routers_own_or_private_networks_is_refused_naming_the_field(
    tmp_path: Path,
) -> None:
    """`crm.url` is the subscriber's to write, and the routers POST signed events there: an
    address on their loopback, the cloud's metadata service or a private network is refused
    with the field named, unless the operator allows that network (an on-premises CRM) in
    router.yaml's crm_allowed_networks."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        original = plan_file.read_text(encoding="utf-8")
        routing = f"/numbers/{SHOP}/routing"
        shop = await site.signed_in("shop")
        form = {"csrf": await csrf_of(shop, routing), "mode": "yaml", "action": "save"}
        for host in ("127.0.0.1:8080", "169.254.169.254", "10.20.0.5", "[::1]", "localhost"):
            pointed = original.replace("crm.lanhua.example", host)
            refused = await shop.post(routing, data={**form, "yaml": pointed})
            assert refused.status_code == 422, host
            assert " crm.url: " in refused.text and "is not a public address" in refused.text
            assert "crm_allowed_networks (router.yaml)" in refused.text
        assert plan_file.read_text(encoding="utf-8") == original

        router_yaml = site.config_dir / "router.yaml"
        with router_yaml.open("a", encoding="utf-8") as settings:
            settings.write("\ncrm_allowed_networks: [10.20.0.0/16]\n")
            settings.write("crm_proxy: http://10.0.0.8:3128  # judged the same behind one\n")
        on_premises = original.replace("crm.lanhua.example", "10.20.0.5")
        assert (await shop.post(routing, data={**form, "yaml": on_premises})).status_code == 303
        assert plan_file.read_text(encoding="utf-8") == on_premises
        await shop.aclose()


async def test_a_number_without_a_plan_is_given_one_from_the_common_form(tmp_path: Path) -> None:
    """A number with an account but no plan file yet: its page says its calls are refused
    until a plan is saved, finds no fault in a plan nobody saved, and the common form's
    default destination is enough to save the first one."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        plan_file.unlink()
        shop = await site.signed_in("shop")
        page = await shop.get(f"/numbers/{SHOP}/routing")
        assert page.status_code == 200
        assert f"{SHOP} has no routing plan yet: its calls are refused" in page.text
        assert "not saved" not in page.text and 'class="problems"' not in page.text
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        saved = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={"csrf": token, "mode": "form", "action": "save", "default_target": GOOD_TARGET},
        )
        assert saved.status_code == 303, saved.text
        assert GOOD_TARGET in plan_file.read_text(encoding="utf-8")
        assert "no routing plan yet" not in (await shop.get(saved.headers["location"])).text
        await shop.aclose()


async def test_problems_are_told_as_what_they_stopped(tmp_path: Path) -> None:
    """A plan file broken by hand is shown with its problems as the plan on file's, not as
    a save the user never made; a preview's problems stopped no save either."""
    async with running_console(tmp_path) as site:
        plan_file = site.config_dir / "plans" / f"{SHOP}.yaml"
        broken = plan_file.read_text(encoding="utf-8").replace(
            "ring_timeout: 20", "ring_timeout: 2000"
        )
        plan_file.write_text(broken, encoding="utf-8")
        shop = await site.signed_in("shop")
        opened = (await shop.get(f"/numbers/{SHOP}/routing")).text
        assert "<strong>The plan on file has problems:</strong>" in opened
        assert "not saved" not in opened
        token = await csrf_of(shop, f"/numbers/{SHOP}/routing")
        previewed = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={"csrf": token, "mode": "yaml", "action": "preview", "yaml": broken},
        )
        assert "<strong>The plan has problems:</strong>" in previewed.text
        saved = await shop.post(
            f"/numbers/{SHOP}/routing",
            data={"csrf": token, "mode": "yaml", "action": "save", "yaml": broken},
        )
        assert "<strong>The plan was not saved:</strong>" in saved.text
        await shop.aclose()
