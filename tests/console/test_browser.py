"""The console in a real browser (Debian's chromium, driven by Selenium through Debian's
chromedriver), beside a real router, both run as `hotline400` processes on one store.

A subscriber signs in, saves a plan with an error and then correctly (its calls recorded
from then on), watches a call placed by the Asterisk simulator appear on the dashboard
without reloading, exports CSV and Excel, switches the satisfaction survey on (confirming its fee),
sees the month's pending closing entries, and opens a call the router recorded and surveyed:
its score and a player of its recording; another subscriber fails to reach the first one's
page; the operator scans the accounts and users, and on a phone opens the menu from the
keyboard; the operator reads the two statements of a month the shop's number changed hands
in, each naming its holder; the administrator of a number the inventory keeps without a
tariffs.yaml account opens its money from its page, which another subscriber cannot; a
tariffs.yaml broken under the operator's open money page has the feature switch name it,
and the dashboard and the configuration page tell its problems in `check`'s words.
Every page is photographed at 1280 and 390 px wide into tests/artifacts/screens/ (or
$HOTLINE400_SCREENS) to be looked at.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from console.security import hash_password
from console.store_access import opened_store
from numbering.lifecycle import NumberRecord, Status
from rating.ledger import LedgerEntry, LedgerKind
from router.configuration.config_dir import load_config
from router.numbers import desk
from router.numbers.inventory import Inventory
from router.simulation.asterisk_agi import CallResult, Outcome, SimulatedCall, run_call
from router.storage.cdr import CDR
from router.storage.cdr import Outcome as CdrOutcome
from router.storage.console_rows import UserRow
from router.storage.number_rows import PartyRow
from tests.conftest import UNWATCHED
from tests.console.harness import (
    CLINIC,
    PASSWORD,
    SHANGHAI,
    SHOP,
    a_month_of_traffic,
    add_users,
    console_config,
    created_store,
)
from tests.xlsx_reading import Cell, read_workbook

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENS = Path(
    os.environ.get("HOTLINE400_SCREENS", Path(__file__).parents[1] / "artifacts" / "screens")
)
WIDTHS = (1280, 390)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"process exited: {process.stdout.read().decode() if process.stdout else ''}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[dict[str, object]]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are needed: ./test.sh installs them")
    config_dir = console_config(tmp_path, None)
    router_yaml = config_dir / "router.yaml"
    recordings = tmp_path / "recordings"
    text = router_yaml.read_text(encoding="utf-8")
    moved = re.sub(r"^recordings_dir: .*$", f"recordings_dir: {recordings}", text, flags=re.M)
    router_yaml.write_text(moved, encoding="utf-8")

    async def seed() -> None:
        async with created_store(config_dir) as store:
            await add_users(store)
            # A month of calls, so the screenshots show pages with figures in them.
            await store.apply(a_month_of_traffic([SHOP, CLINIC], datetime.now(SHANGHAI)))

    asyncio.run(seed())
    agi_port, web_port = _free_port(), _free_port()
    command = [sys.executable, "-m", "router.cli"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    router = subprocess.Popen(
        [*command, "serve", "--config", str(config_dir), "--listen", f"127.0.0.1:{agi_port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    web = subprocess.Popen(
        [
            *command,
            "web",
            "--config",
            str(config_dir),
            "--listen",
            f"127.0.0.1:{web_port}",
            "--insecure-cookies",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        _wait_for_port(agi_port, router)
        _wait_for_port(web_port, web)
        yield {
            "url": f"http://127.0.0.1:{web_port}",
            "agi_port": agi_port,
            "config": config_dir,
            "downloads": tmp_path / "downloads",
        }
    finally:
        for process in (router, web):
            process.terminate()
            process.wait(timeout=20)


def _browser(downloads: Path, width: int) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},900",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    downloads.mkdir(exist_ok=True)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    try:
        browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except WebDriverException as error:
        pytest.fail(f"chromium did not start: {error.msg}")
    browser.implicitly_wait(15)  # a page after a click: wait for it, however busy the machine
    return browser


def _sign_in(browser: webdriver.Chrome, url: str, name: str) -> None:
    browser.get(f"{url}/login")
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button.primary").click()
    WebDriverWait(browser, 10).until(lambda b: "/login" not in b.current_url)


def _submit(browser: webdriver.Chrome, control: WebElement) -> None:
    """Click a control that loads a page and wait for that page: reading at once could find
    the elements of the page being left, gone by the time their text is asked for (this
    chromium says so as an unknown error, not as a stale element)."""
    browser.execute_script("window.leavingThisPage = true")
    control.click()
    # A new page has a new window object; asking while it loads may fail, so ask again.
    WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script(
            "return window.leavingThisPage === undefined && document.readyState === 'complete'"
        )
    )


def _photograph(browser: webdriver.Chrome, name: str, width: int) -> Path:
    """The whole page at this width, as a PNG to look at."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(width, min(max(height, 700) + 120, 4000))
    time.sleep(0.3)
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}-{width}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(width, 900)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


def _surveyed_call(agi_port: int, call_id: str) -> CallResult:
    """A key-account customer's call (its rule dials at any hour), answered, recorded and
    given the score 4; placed again, under a new id each time, until the router has read
    the tariffs that switched the survey on (it reloads them within a moment)."""
    deadline = time.monotonic() + 15
    attempt = 0
    while True:
        attempt += 1
        call = SimulatedCall(
            dialled=SHOP,
            caller_id="13801651234",
            uniqueid=f"{call_id}.{attempt}",
            destinations={"02155550001": Outcome.answers(talk_s=42.0)},
            dtmf=("4",),
            recordings_on_disk=True,
        )
        result = asyncio.run(run_call("127.0.0.1", agi_port, call))
        if any(command.startswith("GET DATA") for command in result.commands):
            return result
        assert time.monotonic() < deadline, f"never surveyed: {result.commands}"
        time.sleep(0.5)


def _finished(config_dir: Path, call_id: str) -> CDR:
    """The call's CDR once the router's write-behind queue has stored its end."""

    async def read() -> CDR | None:
        async with opened_store(config_dir) as store:
            return await store.get_cdr(call_id)

    deadline = time.monotonic() + 15
    while (cdr := asyncio.run(read())) is None or cdr.outcome is CdrOutcome.IN_PROGRESS:
        assert time.monotonic() < deadline, f"{call_id} was not stored"
        time.sleep(0.2)
    return cdr


def _calls_today(browser: webdriver.Chrome) -> int:
    return int(browser.find_element(By.CSS_SELECTOR, "[data-testid=calls-today]").text)


def test_a_subscriber_runs_its_number_from_the_browser(site: dict[str, object]) -> None:
    url, downloads = str(site["url"]), Path(str(site["downloads"]))
    browser = _browser(downloads, WIDTHS[0])
    try:
        _sign_in(browser, url, "shop")
        assert browser.title == "Dashboard · hotline400"
        before = _calls_today(browser)

        # A plan with an error is refused with check's own words, then saved once fixed.
        browser.get(f"{url}/numbers/{SHOP}/routing")
        editor = browser.find_element(By.CSS_SELECTOR, "#yaml-form textarea")
        original = editor.get_attribute("value")
        browser.execute_script(
            "arguments[0].value = arguments[1]",
            editor,
            original.replace("ring_timeout: 20", "ring_timeout: 2000"),
        )
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "#yaml-form button.primary"))
        problems = browser.find_element(By.CSS_SELECTOR, ".problems").text
        assert re.search(rf"config/plans/{SHOP}\.yaml:\d+ ring_timeout:", problems), problems
        editor = browser.find_element(By.CSS_SELECTOR, "#yaml-form textarea")
        browser.execute_script(
            "arguments[0].value = arguments[1]",
            editor,
            original.replace("ring_timeout: 20", "ring_timeout: 25")
            + "\nrecording: {notice: lanhua/call-recorded}\n",
        )
        browser.find_element(By.NAME, "note").send_keys("ring a little longer")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "#yaml-form button.primary"))
        assert "Saved as version 2" in browser.find_element(By.CSS_SELECTOR, ".ok").text
        saved = (Path(str(site["config"])) / "plans" / f"{SHOP}.yaml").read_text(encoding="utf-8")
        assert "ring_timeout: 25" in saved and "recording:" in saved

        # A call placed through the router shows on the open dashboard without a reload.
        browser.get(f"{url}/")
        WebDriverWait(browser, 10).until(
            lambda b: "Updates as calls end" in b.find_element(By.ID, "live-state").text
        )
        time.sleep(1.5)  # the event stream is open
        result = asyncio.run(
            run_call(
                "127.0.0.1",
                int(str(site["agi_port"])),
                SimulatedCall(dialled=SHOP, caller_id="13805310001", uniqueid="browser.1"),
            )
        )
        assert result.error is None
        WebDriverWait(browser, 15).until(lambda b: _calls_today(b) == before + 1)

        # CSV export through the browser's own download.
        browser.get(f"{url}/calls?number={SHOP}")
        browser.find_element(By.LINK_TEXT, "Export CSV").click()
        WebDriverWait(browser, 15).until(lambda b: list(downloads.glob("calls-*.csv")))
        exported = next(downloads.glob("calls-*.csv")).read_text(encoding="utf-8-sig")
        assert exported.startswith("call_id,number,caller")
        assert "\nbrowser.1,4008207788,13805310001," in exported

        # The same search as an Excel workbook, the caller's number a text cell.
        browser.find_element(By.LINK_TEXT, "Export Excel").click()
        WebDriverWait(browser, 15).until(lambda b: list(downloads.glob("calls-*.xlsx")))
        workbook = read_workbook(next(downloads.glob("calls-*.xlsx")))
        [placed] = [row for row in workbook["calls"].rows if row["call_id"].value == "browser.1"]
        assert (placed["number"], placed["caller"]) == (Cell(SHOP, "@"), Cell("13805310001", "@"))

        # A feature switched on from the money page, its fee confirmed first.
        browser.get(f"{url}/numbers/{SHOP}/money")
        pending = browser.find_element(By.CSS_SELECTOR, ".pending-note")  # this month's
        assert "closing" in pending.text and "rent" in pending.text
        survey = "[data-testid=switch-satisfaction_survey]"
        switch = browser.find_element(By.CSS_SELECTOR, survey)
        assert switch.get_attribute("aria-checked") == "false"
        switch.click()
        confirm = WebDriverWait(browser, 10).until(lambda b: b.switch_to.alert)
        assert "30.00 yuan" in confirm.text
        confirm.accept()
        WebDriverWait(browser, 15).until(
            lambda b: (
                b.find_element(By.CSS_SELECTOR, survey).get_attribute("aria-checked") == "true"
            )
        )
        state = browser.find_element(By.CSS_SELECTOR, "[data-testid=feature-satisfaction_survey]")
        assert state.text.startswith("on since ")
        assert "-30.00" in browser.find_element(By.CSS_SELECTOR, "main").text
        tariffs = (Path(str(site["config"])) / "tariffs.yaml").read_text(encoding="utf-8")
        assert "satisfaction_survey: 20" in tariffs

        # A call the router recorded and surveyed: its page shows the score and plays the
        # recording the router named, fetched with the subscriber's own session.
        surveyed = _surveyed_call(int(str(site["agi_port"])), "browser.2")
        stored = _finished(Path(str(site["config"])), str(surveyed.call.uniqueid))
        assert stored.survey_score == 4 and stored.recording_path is not None
        call_page = f"/calls/{surveyed.call.uniqueid}"
        browser.get(url + call_page)
        score = browser.find_element(By.CSS_SELECTOR, "[data-testid=survey-score]")
        assert score.text == "4"
        player = browser.find_element(By.CSS_SELECTOR, "audio[controls][data-testid=recording]")
        assert player.get_attribute("src") == f"{url}{call_page}/recording"
        fetched = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.arrayBuffer().then(b => done("
            "[r.status, r.headers.get('content-type'), b.byteLength])));",
            player.get_attribute("src"),
        )
        assert fetched == [200, "audio/wav", 44]

        for width in WIDTHS:
            browser.set_window_size(width, 900)
            for name, path in (
                ("dashboard", "/"),
                ("calls", f"/calls?number={SHOP}"),
                ("call", call_page),
                ("reports", f"/reports?number={SHOP}"),
                ("reports-no-calls", f"/reports?number={SHOP}&from=2026-01-01&to=2026-01-07"),
                ("routing", f"/numbers/{SHOP}/routing"),
                ("money", f"/numbers/{SHOP}/money"),
                ("users", "/users"),
                ("audit", "/audit"),
            ):
                browser.get(url + path)
                if name == "call" and width == WIDTHS[0]:  # two columns, their tops level
                    facts = browser.find_element(By.CSS_SELECTOR, ".grid2 > dl.facts").rect
                    legs = browser.find_element(By.XPATH, "//h2[text()='Legs']").rect
                    assert legs["y"] == facts["y"], (legs, facts)
                _photograph(browser, name, width)
    finally:
        browser.quit()


def test_the_operator_finds_a_number_and_reserves_it_from_its_page(
    site: dict[str, object],
) -> None:
    config_dir = Path(str(site["config"]))

    async def seed() -> None:
        async with opened_store(config_dir) as store:
            rules = load_config(config_dir).number_rules
            numbers = [f"400888{n:04d}" for n in range(8880, 8900)] + [SHOP, CLINIC]
            await store.add_numbers(
                [
                    NumberRecord(n, rules.grade(n), rules.fee_of_grade[rules.grade(n)])
                    for n in numbers
                ],
                datetime.now(SHANGHAI),
            )
            await store.add_party(
                PartyRow("sp-east", "East Telecom Reseller", "", "", "", datetime.now(SHANGHAI))
            )

    asyncio.run(seed())
    url = str(site["url"])
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        _sign_in(browser, url, "ops")
        _submit(browser, browser.find_element(By.LINK_TEXT, "Numbers"))
        browser.find_element(By.NAME, "pattern").send_keys("8888")
        browser.find_element(By.CSS_SELECTOR, "form.filters button.primary").click()
        WebDriverWait(browser, 15).until(lambda b: "pattern=8888" in b.current_url)
        rows = browser.find_elements(By.CSS_SELECTOR, "[data-testid=numbers] tbody tr")
        shown = [row.text.split()[0] for row in rows]
        assert len(shown) == 20 and "400-888-8888" in shown
        assert all("8888" in number.replace("-", "") for number in shown)
        for width in WIDTHS:
            _photograph(browser, "numbers", width)
        _submit(browser, browser.find_element(By.LINK_TEXT, "400-888-8888"))
        assert "platinum" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "[data-testid=reserve]"))
        status = browser.find_element(By.CSS_SELECTOR, "[data-testid=status]")
        assert status.text == "reserved"
        history = browser.find_element(By.CSS_SELECTOR, "[data-testid=history]").text
        assert "reserved for 30 days (free)" in history and "sp-east" in history
        browser.find_element(By.NAME, "subscriber").send_keys("acme")
        _submit(browser, browser.find_element(By.CSS_SELECTOR, "[data-testid=apply]"))
        assert browser.find_element(By.CSS_SELECTOR, "[data-testid=status]").text == "applied"
        history = browser.find_element(By.CSS_SELECTOR, "[data-testid=history]").text
        assert "selection fee 8000.00 to 4008888888" in history and "_fee" not in history
        for width in WIDTHS:  # submitting (material asked) and withdrawing: apart at both
            browser.set_window_size(width, 900)
            submit = browser.find_element(By.CSS_SELECTOR, "[data-testid=submit]").rect
            withdraw = browser.find_element(By.CSS_SELECTOR, "[data-testid=withdraw]").rect
            assert withdraw["y"] >= submit["y"] + submit["height"] + 8, f"touching at {width} px"
            _photograph(browser, "number", width)
        browser.get(f"{url}/audit")
        assert "number apply" in browser.find_element(By.TAG_NAME, "main").text
    finally:
        browser.quit()


def test_a_search_too_big_for_excel_says_so_and_offers_its_csv(site: dict[str, object]) -> None:
    """Past router.yaml's console_excel_calls, Export Excel opens a page saying why and how
    to have the calls (the CSV of the same search downloads from it), on a desk as on a
    phone; a subscriber's user is told to ask the operator for a workbook of them all, not
    shown the server's command line; the Calls page's three buttons sit on one line, none
    broken over two, at both widths."""
    url, downloads = str(site["url"]), Path(str(site["downloads"]))
    router_yaml = Path(str(site["config"])) / "router.yaml"
    text = router_yaml.read_text(encoding="utf-8")
    limited = re.sub(r"^console_excel_calls: .*$", "console_excel_calls: 5", text, flags=re.M)
    router_yaml.write_text(limited, encoding="utf-8")
    for width in WIDTHS:
        browser = _browser(downloads, width)
        try:
            browser.set_window_size(width, 900)
            _sign_in(browser, url, "shop")
            browser.get(f"{url}/calls?number={SHOP}")
            assert browser.execute_script("return window.innerWidth") == width
            buttons = browser.find_elements(By.CSS_SELECTOR, ".filters .actions > *")
            assert [b.text for b in buttons] == ["Search", "Export CSV", "Export Excel"]
            assert len({b.location["y"] for b in buttons}) == 1, f"two lines at {width} px"
            assert len({b.size["height"] for b in buttons}) == 1, f"a label wraps at {width} px"
            right = browser.find_element(By.CSS_SELECTOR, ".filters").rect
            assert buttons[-1].rect["x"] + buttons[-1].rect["width"] <= right["x"] + right["width"]
            assert "export them all (CSV; Excel up to 5 calls)" in browser.page_source
            _photograph(browser, "calls-search", width)

            _submit(browser, browser.find_element(By.LINK_TEXT, "Export Excel"))
            heading = browser.find_element(By.TAG_NAME, "h1").text
            assert heading == "Too many calls for one Excel download"
            most = browser.find_element(By.CSS_SELECTOR, "[data-testid=excel-most]").text
            assert most == "5"
            told = browser.find_element(By.CSS_SELECTOR, "[data-testid=excel-ask-operator]")
            assert told.text.startswith("Your operator can write every call of this search")
            assert "so that it finds 5 calls or fewer" in told.text
            main = browser.find_element(By.TAG_NAME, "main").text
            assert "hotline400 cdr" not in main and "on the server" not in main
            assert "excel-command" not in browser.page_source  # (waiting for none: 15 s)
            _photograph(browser, "calls-excel-refused-subscriber", width)
            assert not list(downloads.glob("calls-*.xlsx"))
            if width == WIDTHS[0]:
                browser.find_element(By.LINK_TEXT, "Export CSV").click()
                WebDriverWait(browser, 15).until(lambda b: list(downloads.glob("calls-*.csv")))
                exported = next(downloads.glob("calls-*.csv")).read_text(encoding="utf-8-sig")
                assert exported.startswith("call_id,number,caller")
                assert exported.count(f",{SHOP},") > 5
        finally:
            browser.quit()


def test_another_subscriber_cannot_reach_the_shops_pages(site: dict[str, object]) -> None:
    url = str(site["url"])
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        browser.get(f"{url}/login")
        _photograph(browser, "login", WIDTHS[0])
        _sign_in(browser, url, "clinic")
        for path in (f"/numbers/{SHOP}/routing", f"/numbers/{SHOP}/money", f"/calls?number={SHOP}"):
            browser.get(url + path)
            assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
            assert SHOP not in browser.find_element(By.TAG_NAME, "main").text
        _photograph(browser, "not-found", WIDTHS[1])
        browser.get(f"{url}/numbers/{CLINIC}/routing")
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith(f"Routing of {CLINIC}")
    finally:
        browser.quit()


def test_the_operator_scans_the_accounts_and_the_users(site: dict[str, object]) -> None:
    url = str(site["url"])
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        _sign_in(browser, url, "ops")
        _submit(browser, browser.find_element(By.LINK_TEXT, "Accounts"))
        table = browser.find_element(By.CSS_SELECTOR, "[data-testid=accounts]").text
        assert SHOP in table and CLINIC in table and "Lanhua Online Shop" in table
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            for name, path in (("accounts", "/accounts"), ("users-operator", "/users")):
                browser.get(url + path)
                _photograph(browser, name, width)
        browser.get(f"{url}/password")
        _photograph(browser, "password", WIDTHS[1])
        # On a phone the pages are behind the menu: the keyboard reaches it and opens it.
        menu = browser.find_element(By.CSS_SELECTOR, ".top nav")
        assert not menu.is_displayed()
        for _ in range(4):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            if browser.execute_script("return document.activeElement.id") == "menu-toggle":
                break
        else:
            pytest.fail("Tab never reaches the menu on a narrow screen")
        ActionChains(browser).send_keys(Keys.SPACE).perform()
        assert menu.is_displayed() and browser.find_element(By.LINK_TEXT, "Accounts").is_displayed()
    finally:
        browser.quit()


MATERIAL = desk.Material("91110000100000000R", "Li Si", "110***********1233")
"""Real-name material complete enough for an application to go to review at once."""


async def _changed_hands(config_dir: Path, now: datetime) -> str:
    """The shop's number held by oldco (through sp-east) from 200 days ago, cancelled 30 days
    later, back in the pool about 50 days ago after its notice and freeze, with a payment
    of oldco's earlier that month, then taken by newco (through sp-west): that month has a
    statement per holder. Returns the month."""
    config = load_config(config_dir)
    rules = config.number_rules
    old, new = now - timedelta(days=200), now - timedelta(days=40)
    async with opened_store(config_dir) as store:
        grade = rules.grade(SHOP)
        await store.add_numbers([NumberRecord(SHOP, grade, rules.fee_of_grade[grade])], old)
        for provider in ("sp-east", "sp-west"):
            await store.add_party(PartyRow(provider, provider.upper(), "", "", "", old))
        inventory = Inventory(store, rules, config.calendar, UNWATCHED)
        await desk.reserve(inventory, SHOP, "sp-east", old)
        await desk.apply(inventory, SHOP, "oldco", old, material=MATERIAL)
        await desk.act(inventory, SHOP, "cancel", "ops", old + timedelta(days=30))
        await desk.reserve(inventory, SHOP, "sp-west", new)
        await desk.apply(inventory, SHOP, "newco", new, material=MATERIAL)
        history = await store.number_history(SHOP)
        back = next(e.at for e in history if e.to_status == Status.AVAILABLE.value)
        paid = back.astimezone(SHANGHAI).replace(day=1, hour=9, minute=0)
        payment = LedgerEntry(SHOP, paid, Decimal("42.00"), LedgerKind.PAYMENT, "oldco-paid")
        await store.post_ledger([payment])
    return f"{back.astimezone(SHANGHAI):%Y-%m}"


def test_the_operator_tells_the_holders_of_a_month_the_number_changed_hands_in(
    site: dict[str, object],
) -> None:
    config_dir = Path(str(site["config"]))
    month = asyncio.run(_changed_hands(config_dir, datetime.now(SHANGHAI)))
    url = str(site["url"])
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        _sign_in(browser, url, "ops")
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            browser.get(f"{url}/numbers/{SHOP}/money")
            holders = browser.find_elements(By.CSS_SELECTOR, f"[data-testid=holder-{month}]")
            assert [holder.text for holder in holders] == [
                "newco (provider sp-west)",  # the latest holding's first
                "oldco (provider sp-east)",
            ]
            assert all(holder.is_displayed() for holder in holders)
            _photograph(browser, "money-changed-hands", width)
    finally:
        browser.quit()


HELD_WITHOUT_ACCOUNT = "4008888001"
"""A number numco applied for through the inventory: no plan, no tariffs.yaml account."""


async def _held_without_an_account(config_dir: Path, now: datetime) -> None:
    """HELD_WITHOUT_ACCOUNT applied for by numco an hour ago (its opening and selection fees
    booked), with its subscriber administrator `num-admin`."""
    config = load_config(config_dir)
    rules = config.number_rules
    grade = rules.grade(HELD_WITHOUT_ACCOUNT)
    then = now - timedelta(hours=1)
    async with opened_store(config_dir) as store:
        record = NumberRecord(HELD_WITHOUT_ACCOUNT, grade, rules.fee_of_grade[grade])
        await store.add_numbers([record], then)
        await store.add_party(PartyRow("sp-east", "East Telecom Reseller", "", "", "", then))
        inventory = Inventory(store, rules, config.calendar, UNWATCHED)
        await desk.reserve(inventory, HELD_WITHOUT_ACCOUNT, "sp-east", then)
        await desk.apply(inventory, HELD_WITHOUT_ACCOUNT, "numco", then, material=MATERIAL)
        digest = hash_password(PASSWORD)
        row = UserRow("num-admin", "subscriber-admin", HELD_WITHOUT_ACCOUNT, digest, False, now)
        await store.add_user(row)


def test_the_users_of_a_number_without_an_account_open_its_money_from_its_page(
    site: dict[str, object],
) -> None:
    """The number's administrator finds it on the Numbers page, follows its page's money
    link and reads its balance and fees, as a phone shows them too; a user of another
    subscriber is told the page is not found."""
    asyncio.run(_held_without_an_account(Path(str(site["config"])), datetime.now(SHANGHAI)))
    url, number = str(site["url"]), HELD_WITHOUT_ACCOUNT
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        _sign_in(browser, url, "num-admin")
        _submit(browser, browser.find_element(By.LINK_TEXT, "Numbers"))
        _submit(browser, browser.find_element(By.LINK_TEXT, "400-888-8001"))
        assert f"/numbers/{number}/routing" not in browser.page_source, "it has no plan"
        _photograph(browser, "number-without-account-subscriber", WIDTHS[0])
        _submit(browser, browser.find_element(By.LINK_TEXT, "money"))
        assert browser.current_url == f"{url}/numbers/{number}/money"
        assert browser.find_element(By.TAG_NAME, "h1").text == f"Money of {number}"
        balance = Decimal(browser.find_element(By.CSS_SELECTOR, "[data-testid=balance]").text)
        assert balance < 0
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "opening fee" in main and "no account in tariffs.yaml" in main
        assert "/payments" not in browser.page_source, "only the operator books payments"
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            browser.refresh()
            assert browser.find_element(By.CSS_SELECTOR, "[data-testid=balance]").is_displayed()
            # Money owed with no account to bill it: marked as a low prepaid balance is.
            tile = browser.find_element(By.CSS_SELECTOR, ".tile:has([data-testid=balance])")
            assert "bad" in tile.get_attribute("class").split()
            assert browser.find_element(By.CSS_SELECTOR, "[data-testid=owed]").text == "owed"
            name = browser.find_element(By.CSS_SELECTOR, ".who .user-name")
            assert name.text == "num-admin" and name.size["height"] < 30, "the name wraps"
            refs = browser.find_elements(By.CSS_SELECTOR, "td.ref")
            assert len(refs) == 2
            for ref in refs:  # "opening@20261208T065437v1": whole, or broken after its @
                lines = _lines(browser, ref)
                assert len(lines) == 1 or (len(lines) == 2 and lines[0].endswith("@")), lines
            features = browser.find_element(By.CSS_SELECTOR, "[data-testid=no-features]")
            assert "no features to switch" in features.text
            scrolls = browser.execute_script(
                "const box = arguments[0].closest('.table-wrap');"
                "return box.scrollWidth > box.clientWidth",
                features,
            )
            assert not scrolls, f"the features' note scrolls sideways at {width} px"
            _photograph(browser, "money-without-account-subscriber", width)

        browser.delete_all_cookies()
        _sign_in(browser, url, "clinic")
        browser.get(f"{url}/numbers/{number}/money")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Not found"
        assert number not in browser.find_element(By.TAG_NAME, "main").text
    finally:
        browser.quit()


def test_the_operator_is_told_of_a_broken_tariffs_file_and_reads_its_problems(
    site: dict[str, object],
) -> None:
    """tariffs.yaml breaks while the money page is open: the switch clicked then says which
    file stops it and links to its problems; the dashboard says how many there are, and the
    configuration page lists them as `hotline400 check` does, at both widths."""
    url, config_dir = str(site["url"]), Path(str(site["config"]))
    tariffs = config_dir / "tariffs.yaml"
    browser = _browser(Path(str(site["downloads"])), WIDTHS[0])
    try:
        _sign_in(browser, url, "ops")
        browser.get(f"{url}/numbers/{SHOP}/money")
        switch = browser.find_element(By.CSS_SELECTOR, "[data-testid=switch-satisfaction_survey]")
        text = tariffs.read_text(encoding="utf-8")
        tariffs.write_text(text.replace("monthly_rent: 100.00", "monthly_rnet: 100.00", 1), "utf-8")
        switch.click()
        WebDriverWait(browser, 10).until(lambda b: b.switch_to.alert).accept()
        WebDriverWait(browser, 15).until(
            lambda b: b.find_element(By.TAG_NAME, "h1").text == "Configuration problem"
        )
        main = browser.find_element(By.TAG_NAME, "main").text
        assert "Features cannot be switched while tariffs.yaml has problems." in main
        browser.set_window_size(WIDTHS[1], 900)
        assert not _scrolls_sideways(browser), "the refusal scrolls sideways on a phone"
        _photograph(browser, "broken-file", WIDTHS[1])
        _submit(browser, browser.find_element(By.PARTIAL_LINK_TEXT, "See the problems of"))
        assert browser.current_url.startswith(f"{url}/configuration#file-")
        listed = browser.find_element(
            By.CSS_SELECTOR, browser.current_url.split("/configuration")[1]
        )
        assert f"{tariffs}:" in listed.text and "monthly_rnet: unknown key" in listed.text
        for width in WIDTHS:
            browser.set_window_size(width, 900)
            browser.get(url)
            notice = browser.find_element(By.CSS_SELECTOR, "[data-testid=config-problems]")
            assert notice.text.startswith("1 configuration problem in ")
            assert not _scrolls_sideways(browser), f"the dashboard scrolls sideways at {width}"
            _photograph(browser, "dashboard-config-problems", width)
            for name, path in (
                ("configuration", "/configuration"),
                ("money-tariffs-broken", f"/numbers/{SHOP}/money"),
            ):
                browser.get(url + path)
                assert not _scrolls_sideways(browser), f"{path} scrolls sideways at {width}"
                _photograph(browser, name, width)
    finally:
        browser.quit()


def _scrolls_sideways(browser: webdriver.Chrome) -> bool:
    return bool(
        browser.execute_script(
            "return document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
    )


def _lines(browser: webdriver.Chrome, cell: WebElement) -> list[str]:
    """The lines a reference cell's own text is laid out on, as displayed."""
    return list(
        browser.execute_script(
            "const text = arguments[0].childNodes;"
            "const lines = []; let top = null;"
            "for (const node of text) {"
            "  if (node.nodeType !== Node.TEXT_NODE) continue;"
            "  for (let i = 0; i < node.length; i++) {"
            "    const range = document.createRange(); range.setStart(node, i);"
            "    range.setEnd(node, i + 1);"
            "    const y = Math.round(range.getBoundingClientRect().top);"
            "    if (top === null || y > top + 2) { lines.push(''); top = y; }"
            "    lines[lines.length - 1] += node.data[i];"
            "  }"
            "}"
            "return lines;",
            cell,
        )
    )
