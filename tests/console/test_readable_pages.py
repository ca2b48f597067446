"""What the console's pages say, read as a subscriber or the operator reads them: every
figure in words and units a person uses, every statement row adding up, one page marked as
the current one, every control named, and a refused form given back as it was filled in."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from console.reports import fraud_signals
from console.security import hash_password
from numbering.lifecycle import NumberRecord
from numbering.rules import NumberRules
from rating.ledger import LedgerEntry, LedgerKind
from router.storage.cdr import (
    CDR,
    AddLeg,
    CallerRegion,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
)
from router.storage.console_rows import UserRow
from tests.console.harness import NOW, PASSWORD, SHANGHAI, SHOP, a_call, csrf_of, running_console


def _row_of(page: str, call_id: str) -> str:
    found = re.search(rf'<tr>\s*<td><a href="/calls/{re.escape(call_id)}">.*?</tr>', page, re.S)
    assert found, f"no row of {call_id}"
    return found.group(0)


def _cells(row: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


async def test_a_call_from_nowhere_known_reads_unknown_in_the_list_as_on_its_page(
    tmp_path: Path,
) -> None:
    """A withheld number has no region. An empty cell reads as a missing figure, and on a
    phone, where each row is a card of "label value" lines, the label with nothing beside it
    ran into the next line's."""
    withheld = CDR("hidden", SHOP, "anonymous", None, "unknown", NOW, CallerRegion())
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [StartCall(withheld), FinishCall("hidden", {"outcome": Outcome.BLOCKED})]
        )
        shop = await site.signed_in("shop")
        cells = _cells(_row_of((await shop.get("/calls")).text, "hidden"))
        assert cells[2:4] == ["withheld", "unknown"]
        assert "<dt>Region</dt><dd>unknown" in (await shop.get("/calls/hidden")).text
        await shop.aclose()


async def test_call_lengths_read_as_minutes_and_seconds(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("long", SHOP, NOW - timedelta(minutes=30), seconds=3725))
        shop = await site.signed_in("shop")
        listed = _cells(_row_of((await shop.get("/calls")).text, "long"))
        assert listed[5] == "1:02:05"
        page = (await shop.get("/calls/long")).text
        assert re.search(r"<dt>Billable</dt><dd>1:02:05 <span[^>]*>\(3725 s\)</span>", page)
        await shop.aclose()


async def test_a_statement_row_shows_the_numbers_own_fees_and_adds_up(tmp_path: Path) -> None:
    """The opening, selection and keeping fees of the number are in the closing balance, as
    `hotline400 bill` shows them; a row without them did not add up to its closing balance.
    The entries list names each kind in words."""
    async with running_console(tmp_path) as site:
        await site.store.post_ledger(
            [
                LedgerEntry(SHOP, NOW, Decimal("-600.00"), LedgerKind.OPENING_FEE, "opening"),
                LedgerEntry(SHOP, NOW, Decimal("-300.00"), LedgerKind.SELECTION_FEE, "grade"),
            ]
        )
        shop = await site.signed_in("shop")
        page = (await shop.get(f"/numbers/{SHOP}/money")).text
        head = re.search(r"<thead><tr><th>Month</th>.*?</tr>", page, re.S)
        assert head
        headers = _cells(head.group(0).replace("<th", "<td").replace("</th>", "</td>"))
        row = re.search(r"<tr[^>]*><td>2026-11</td>.*?</tr>", page, re.S)
        assert row
        statement = dict(zip(headers, _cells(row.group(0)), strict=True))
        assert statement["Number fees"] == "900.00"
        figures = [
            Decimal(statement[name].rstrip("*"))
            for name in ("Rent", "Calls", "Features", "Minimum top-up", "Number fees")
        ]
        opening, closing = Decimal(statement["Opening"]), Decimal(statement["Closing"])
        payments = Decimal(statement["Payments"]) + Decimal(statement["Adjustments"])
        assert opening - sum(figures) + payments == closing
        entries = page.split("<h2>Payments and fees</h2>", 1)[1]
        assert "<td>opening fee</td>" in entries and "<td>selection fee</td>" in entries
        assert "opening_fee" not in entries
        await shop.aclose()


def _current(page: str) -> list[str]:
    nav = page.split('<nav id="menu">', 1)[1].split("</nav>", 1)[0]
    return re.findall(r'<a href="([^"]+)" class="active" aria-current="page">', nav)


async def test_the_menu_marks_one_link_as_the_current_page(tmp_path: Path) -> None:
    """A number's life page is among the Numbers pages; its routing and money pages are the
    number's own menu entry. Both lit at once left the reader guessing where they were."""
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        assert _current((await shop.get(f"/numbers/{SHOP}/money")).text) == [
            f"/numbers/{SHOP}/routing"
        ]
        rules = NumberRules()
        record = NumberRecord(SHOP, rules.grade(SHOP), rules.fee_of_grade[rules.grade(SHOP)])
        await site.store.add_numbers([record], NOW - timedelta(days=1))
        life = await shop.get(f"/numbers/{SHOP}")
        assert life.status_code == 200
        assert _current(life.text) == ["/numbers"]
        ops = await site.signed_in("ops")
        assert _current((await ops.get(f"/numbers/{SHOP}")).text) == ["/numbers"]
        assert _current((await shop.get("/calls")).text) == ["/calls"]
        await shop.aclose()
        await ops.aclose()


async def test_the_plan_editor_is_named_for_screen_readers(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        page = (await shop.get(f"/numbers/{SHOP}/routing")).text
        named = re.search(r'<textarea name="yaml" aria-labelledby="([^"]+)"', page)
        assert named and f'<h2 id="{named.group(1)}">Plan (YAML)</h2>' in page
        await shop.aclose()


async def test_a_refused_new_user_comes_back_filled_in_but_for_the_password(
    tmp_path: Path,
) -> None:
    """Choosing an administrator for an account and then seeing the form emptied, the role
    back at read-only staff, over a short password invites adding the wrong user."""
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, "/users")
        refused = await ops.post(
            "/users",
            data={
                "csrf": token,
                "name": "lanhua-boss",
                "role": "subscriber-admin",
                "account": SHOP,
                "password": "short",
            },
        )
        assert refused.status_code == 422
        page = refused.text
        assert 'name="name" value="lanhua-boss"' in page
        assert "<option selected>subscriber-admin</option>" in page
        assert f'name="account" value="{SHOP}"' in page
        assert "short" not in page.split('action="/users"', 1)[1]
        await ops.aclose()


async def test_a_dashboard_without_numbers_says_where_to_look(tmp_path: Path) -> None:
    """A subscriber of the inventory whose numbers have no plan yet sees an empty dashboard;
    it says where its numbers stand instead of a bare "No numbers yet"."""
    async with running_console(tmp_path) as site:
        await site.store.add_user(
            UserRow("acme-boss", "subscriber-admin", "acme", hash_password(PASSWORD), False, NOW)
        )
        acme = await site.signed_in("acme-boss")
        page = (await acme.get("/")).text
        told = re.search(r'data-testid="no-numbers">(.*?)</td>', page, re.S)
        assert told and '<a href="/numbers">Numbers</a> page' in told.group(1)
        await acme.aclose()


def test_one_international_call_is_told_in_the_singular() -> None:
    day = NOW.date()
    [one] = fraud_signals(Counter(), Counter({day: 1}), SHANGHAI)
    [two] = fraud_signals(Counter(), Counter({day: 2}), SHANGHAI)
    assert one.detail == "1 call from an international number"
    assert two.detail == "2 calls from international numbers"


async def test_a_call_of_another_year_shows_its_year_in_the_list(tmp_path: Path) -> None:
    """This year's calls are listed by month and day; a search reaching back a year would
    otherwise list two different days alike."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("this-year", SHOP, NOW - timedelta(hours=2)),
                *a_call("last-year", SHOP, NOW - timedelta(days=365)),
            ]
        )
        shop = await site.signed_in("shop")
        page = (await shop.get("/calls")).text
        assert _cells(_row_of(page, "this-year"))[0] == "11-24 13:00:00"
        assert _cells(_row_of(page, "last-year"))[0] == "2025-11-24 15:00:00"
        await shop.aclose()


async def test_the_reports_choice_of_all_numbers_is_worded_for_whoever_reads_it(
    tmp_path: Path,
) -> None:
    async with running_console(tmp_path) as site:
        ops, shop = await site.signed_in("ops"), await site.signed_in("shop")
        assert '<option value="">every number</option>' in (await ops.get("/reports")).text
        assert '<option value="">all my numbers</option>' in (await shop.get("/reports")).text
        await ops.aclose()
        await shop.aclose()


async def test_a_new_user_refused_for_its_account_is_told_of_the_forms_field(
    tmp_path: Path,
) -> None:
    """The command's option (--account) means nothing on the console's form."""
    async with running_console(tmp_path) as site:
        ops = await site.signed_in("ops")
        token = await csrf_of(ops, "/users")
        fields = {"csrf": token, "name": "newstaff", "password": "a long enough password"}
        refused = await ops.post("/users", data={**fields, "role": "subscriber-staff"})
        assert refused.status_code == 422
        assert "a subscriber-staff user needs the Account field" in refused.text
        operator = await ops.post("/users", data={**fields, "role": "operator", "account": SHOP})
        assert "leave out the Account field" in operator.text
        assert "--account" not in refused.text + operator.text
        await ops.aclose()


async def test_only_the_operator_is_told_the_command_that_closes_a_month(tmp_path: Path) -> None:
    """A subscriber cannot run `hotline400 bill --close`; the page tells it only that the
    month is closed later."""
    async with running_console(tmp_path) as site:
        ops, shop = await site.signed_in("ops"), await site.signed_in("shop")
        for client, told in ((ops, True), (shop, False)):
            page = (await client.get(f"/numbers/{SHOP}/money")).text
            unclosed = re.search(r'data-testid="unclosed">(.*?)</p>', page, re.S)
            assert unclosed, "the months before this one are not closed"
            assert ("hotline400 bill --close" in unclosed.group(1)) is told
        await ops.aclose()
        await shop.aclose()


async def test_the_reports_unanswered_calls_say_when_they_are_the_newest_of_more(
    tmp_path: Path,
) -> None:
    """The report lists the newest 20 unanswered calls; past 20 it says so and links to the
    call records of them all, instead of ending the list as if there were no others."""
    async with running_console(tmp_path) as site:
        days = "from=2026-11-20&to=2026-11-24"
        shop = await site.signed_in("shop")
        await site.store.apply(a_call("few", SHOP, NOW - timedelta(hours=1), Outcome.BUSY))
        page = (await shop.get(f"/reports?number={SHOP}&{days}")).text
        assert "/calls/few" in page and 'data-testid="unanswered-more"' not in page
        busy = [
            op
            for i in range(24)
            for op in a_call(f"busy{i}", SHOP, NOW - timedelta(hours=2, minutes=i), Outcome.BUSY)
        ]
        await site.store.apply(busy)
        page = (await shop.get(f"/reports?number={SHOP}&{days}")).text
        more = re.search(r'data-testid="unanswered-more">(.*?)</p>', page, re.S)
        assert more, "20 of 25 unanswered calls listed as if they were all"
        said = re.sub(r"<[^>]+>", "", more.group(1))
        assert "the newest 20 of 25 unanswered calls" in said
        query = f"number={SHOP}&amp;outcome=unanswered&amp;since=2026-11-20&amp;until=2026-11-24"
        assert f'href="/calls?{query}"' in more.group(1)
        listed = (await shop.get(f"/calls?{query.replace('&amp;', '&')}")).text
        assert listed.count('<tr>\n  <td><a href="/calls/') == 25
        await shop.aclose()


async def test_disabling_a_user_asks_first_saying_it_cannot_be_undone(tmp_path: Path) -> None:
    """Disabling is one click in a list of users and nothing re-enables a user (its name
    stays taken), so the button asks first, as cancelling a number does."""
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        page = (await shop.get("/users")).text
        form = re.search(r'<form method="post" action="/users/shopstaff/disable"[^>]*>', page)
        assert form, "no form disabling shopstaff"
        asked = re.search(r'data-confirm="([^"]*)"', form.group(0))
        assert asked, "shopstaff is disabled without asking"
        assert asked.group(1).startswith("Disable shopstaff?")
        assert "cannot be undone" in asked.group(1)
        await shop.aclose()


async def test_a_calls_legs_say_in_words_why_each_was_dialled_and_how_it_went(
    tmp_path: Path,
) -> None:
    """Asterisk's DIALSTATUS (CHANUNAVAIL, NOANSWER) and the store's reasons (no_answer)
    are keys, not words; the call page names them as it names statuses and fees, the
    key kept as a tooltip for whoever reads Asterisk's logs."""
    started = NOW - timedelta(minutes=5)
    legs = [
        Leg(1, "02155556666", "CHANUNAVAIL", started, 0, 0, ForwardReason.PRIMARY),
        Leg(2, "02155556667", "NOANSWER", started, 20, 0, ForwardReason.NO_ANSWER),
        Leg(3, "02155556668", "ANSWER", started, 5, 60, ForwardReason.BUSY),
    ]
    async with running_console(tmp_path) as site:
        call = a_call("forwarded", SHOP, started)
        await site.store.apply([call[0], *(AddLeg("forwarded", leg) for leg in legs), call[1]])
        shop = await site.signed_in("shop")
        page = (await shop.get("/calls/forwarded")).text
        rows = re.findall(r"<tr><td>\d</td>.*?</tr>", page, re.S)
        assert [_cells(row)[2:4] for row in rows] == [
            ["first destination", "unreachable"],
            ["forwarded: no answer", "no answer"],
            ["forwarded: busy", "answered"],
        ]
        assert 'title="CHANUNAVAIL"' in rows[0]
        await shop.aclose()


async def test_the_previews_time_names_the_zone_it_is_read_in(tmp_path: Path) -> None:
    """The preview's date-time field carries no zone, and a browser's reader takes it for
    their own; the console reads it in router.yaml's timezone, so the field says which."""
    async with running_console(tmp_path) as site:
        shop = await site.signed_in("shop")
        page = (await shop.get(f"/numbers/{SHOP}/routing")).text
        label = re.search(r"<label>([^<]*(?:<(?!input)[^<]*)*)<input name=\"at\"", page)
        assert label, "no label of the preview's time"
        assert re.sub(r"<[^>]+>", "", label.group(1)).split() == ["at", "(Asia/Shanghai)"]
        await shop.aclose()


async def test_one_answered_call_today_is_told_in_the_singular(tmp_path: Path) -> None:
    async with running_console(tmp_path) as site:
        await site.store.apply(a_call("one", SHOP, NOW - timedelta(hours=1)))
        shop = await site.signed_in("shop")
        page = (await shop.get("/")).text
        answered = re.search(
            r'<div class="label">Answered</div>.*?<div class="sub">(.*?)</div>', page, re.S
        )
        assert answered and answered.group(1) == "1 call"
        await site.store.apply(a_call("two", SHOP, NOW - timedelta(minutes=30)))
        page = (await shop.get("/dashboard/summary")).text
        answered = re.search(
            r'<div class="label">Answered</div>.*?<div class="sub">(.*?)</div>', page, re.S
        )
        assert answered and answered.group(1) == "2 calls"
        await shop.aclose()


async def test_caps_a_plan_writes_in_whole_yuan_show_to_the_fen(tmp_path: Path) -> None:
    """A plan may write its caps as 3000 or 300.5; the dashboard shows every amount to the
    fen, as the balance and spend beside them are."""
    async with running_console(tmp_path) as site:
        plan = site.config_dir / "plans" / "4006001234.yaml"
        text = plan.read_text(encoding="utf-8")
        text = text.replace('monthly_cost: "3000.00"', "monthly_cost: 3000")
        plan.write_text(text.replace('daily_cost: "300.00"', "daily_cost: 300.5"), "utf-8")
        ops = await site.signed_in("ops")
        page = (await ops.get("/")).text
        assert "0.00 of 3000.00 yuan" in page and "daily cap 300.50 yuan" in page
        await ops.aclose()


async def test_a_region_is_found_as_the_list_shows_it_or_by_its_full_name(tmp_path: Path) -> None:
    """The Region column reads '山东 济南'; typed back into the search, or as 山东省, 济南市,
    Shandong or 浙江省杭州市, the region finds its calls, not an empty list."""
    async with running_console(tmp_path) as site:
        await site.store.apply(
            [
                *a_call("jinan", SHOP, NOW - timedelta(hours=2)),
                *a_call("hangzhou", SHOP, NOW - timedelta(hours=1), province="浙江", city="杭州"),
            ]
        )
        shop = await site.signed_in("shop")
        for typed, found in (
            ("山东 济南", "jinan"),
            ("山东", "jinan"),
            ("山东省", "jinan"),
            ("Shandong", "jinan"),
            ("济南市", "jinan"),
            ("浙江省杭州市", "hangzhou"),
            ("浙江 杭州", "hangzhou"),
        ):
            page = (await shop.get("/calls", params={"region": typed})).text
            listed = re.findall(r'<td><a href="/calls/([^"]+)">', page)
            assert listed == [found], typed
            assert f'name="region" value="{typed}"' in page  # the search as typed
        await shop.aclose()


async def test_a_call_over_midnight_shows_the_day_it_ended(tmp_path: Path) -> None:
    """Answered and ended are told as times of the day the call started; one that ended
    the next day says which day, or it reads as ending before it started."""
    late = NOW.replace(hour=23, minute=58, second=0)
    async with running_console(tmp_path, clock=lambda: late + timedelta(hours=1)) as site:
        await site.store.apply(
            [*a_call("late", SHOP, late, seconds=300), *a_call("early", SHOP, NOW, seconds=60)]
        )
        shop = await site.signed_in("shop")
        page = (await shop.get("/calls/late")).text
        assert "<dt>Answered</dt><dd>23:58:05</dd>" in page
        assert "<dt>Ended</dt><dd>2026-11-25 00:03:05</dd>" in page
        page = (await shop.get("/calls/early")).text
        assert "<dt>Ended</dt><dd>15:01:05</dd>" in page
        await shop.aclose()
