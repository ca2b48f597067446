"""The figures the console shows agree with the call records: counted by local (Asia/Shanghai)
days and months, whichever page shows them."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from router.storage.cdr import Outcome
from tests.console.harness import CLINIC, SHANGHAI, SHOP, a_call, running_console


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def _cells(page: str, number: str) -> list[str]:
    """The text of the cells of the table row that links to `number`'s money page."""
    row = re.search(rf'<tr[^>]*>\s*<td><a href="/numbers/{number}/money">.*?</tr>', page, re.S)
    assert row, f"no row of {number}"
    return [
        re.sub(r"<[^>]+>|\s+", " ", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
    ]


async def test_the_months_calls_are_the_calls_of_the_local_month_with_or_without_a_cap(
    tmp_path: Path,
) -> None:
    """The clinic's plan has no monthly call cap: nothing counts cap units for it, yet its
    month has calls. The shop's cap meter still shows the units its cap has counted."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("oct", CLINIC, _local("2026-10-31T23:30:00")),
                *a_call("nov.first", CLINIC, _local("2026-11-01T00:10:00")),  # 10-31 UTC
                *a_call("nov.missed", CLINIC, _local("2026-11-20T10:00:00"), Outcome.NOANSWER),
                *a_call("nov.today", CLINIC, _local("2026-11-24T09:00:00")),
                *a_call("shop.1", SHOP, _local("2026-11-24T09:00:00")),
            ]
        )
        await site.store.apply(a_call("running", CLINIC, _local("2026-11-24T14:58:00"))[:1])
        for _ in range(2):
            assert await site.store.reserve_call(SHOP, "2026-11", 100000)
        ops = await site.signed_in("ops")
        dashboard = (await ops.get("/")).text
        assert _cells(dashboard, CLINIC)[3] == "3"
        assert _cells(dashboard, SHOP)[3] == "1"
        assert "2 of 100000 calls" in dashboard
        accounts = (await ops.get("/accounts")).text
        assert _cells(accounts, CLINIC)[5] == "3"
        money = (await ops.get(f"/numbers/{CLINIC}/money")).text
        assert re.search(r">This month</div>.*?>3 calls</div>", money, re.S)
        await ops.aclose()


async def test_a_search_whose_last_day_comes_before_its_first_says_so(tmp_path: Path) -> None:
    """Not an empty page that reads "No calls": the page says what is wrong and shows the
    days between the two; the export, asked for less than it would give, gives nothing."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("before", SHOP, _local("2026-11-22T23:59:59")),
                *a_call("first", SHOP, _local("2026-11-23T00:00:00")),
                *a_call("last", SHOP, _local("2026-11-24T23:59:59")),
            ]
        )
        shop = await site.signed_in("shop")
        query = "since=2026-11-24&until=2026-11-23"
        page = (await shop.get(f"/calls?{query}")).text
        assert "until: the last day comes before the first" in page
        assert re.findall(r'href="/calls/([^"]+)"', page) == ["last", "first"]
        assert 'name="since" value="2026-11-23"' in page
        export = await shop.get(f"/calls.csv?{query}")
        assert export.status_code == 400
        assert export.text == "until: the last day comes before the first\n"
        await shop.aclose()
