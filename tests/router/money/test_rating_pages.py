"""Rating reads its calls a page at a time and prices them in answer order all the same.

4000000008 (package `office`, home area 010) has 5 included minutes a month, then 0.10 a
minute answered locally. Sixteen calls of 60 s on 2026-11-05, all answered in Beijing: at
each of eight hours, one call waits 15 minutes in the queue (w) and one, started five
minutes later, is answered at once (q), so the order of the starts is not that of the
answers. Some answers are recorded in UTC, two calls share an answer instant, and
one answer is stamped a second before its call's start (Asterisk's AnswerTime, cut to the
second). The five calls answered first take the included minutes, whatever page they were
read in; pages of 2 give the same prices, ledger, changes and progress as one page.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from router.money.answer_order import in_answer_order
from router.money.books import load_books
from router.money.rerating import Change, rate_cdrs
from router.storage.cdr import (
    CDR,
    CallerRegion,
    CdrOp,
    FinishCall,
    ForwardReason,
    Leg,
    Outcome,
    StartCall,
)
from tests.conftest import STORE_ENGINES, UNWATCHED, opened_store, store_of_engine

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "4000000008"
DAY = datetime(2026, 11, 5, 9, 0, tzinfo=SHANGHAI)
RERATED_AT = datetime(2026, 12, 2, 9, 0, tzinfo=SHANGHAI)


def tariffs(local: str) -> str:
    return f"""\
version: "local-{local}"
caller_tariffs:
  fixed: {{per_seconds: 60, charge: 0.10}}
  mobile: {{per_seconds: 60, charge: 0.10}}
  other: {{per_seconds: 60, charge: 0.10}}
packages:
  office:
    included_minutes: 5
    local: {{per_seconds: 60, charge: {local}}}
    long_distance: {{per_seconds: 60, charge: 0.30}}
accounts:
  "{NUMBER}": {{package: office}}
"""


def answered_call(call_id: str, started: datetime, answered: datetime) -> list[CdrOp]:
    cdr = CDR(
        call_id,
        NUMBER,
        "01066668888",
        "01066668888",
        "fixed",
        started,
        CallerRegion("北京"),
        legs=(Leg(1, "01087654321", "ANSWER", started, 0, 60, ForwardReason.PRIMARY),),
    )
    finish = {
        "answered_at": answered,
        "ended_at": answered + timedelta(seconds=60),
        "billable_seconds": 60,
        "outcome": Outcome.ANSWERED,
    }
    return [StartCall(cdr), FinishCall(call_id, finish)]


CDR_BUSY = CDR("busy", NUMBER, "01066668888", "01066668888", "fixed", DAY, CallerRegion("北京"))
"""A call nobody answered: never read for rating."""


def calls() -> dict[str, tuple[datetime, datetime]]:
    """Each call's start and answer."""
    found: dict[str, tuple[datetime, datetime]] = {}
    for hour in range(8):
        waited = DAY + timedelta(hours=hour)
        found[f"w{hour}"] = (waited, waited + timedelta(minutes=15))
        quick = waited + timedelta(minutes=5)
        found[f"q{hour}"] = (quick, quick + timedelta(seconds=10))
    found["q1"] = (found["q1"][0], found["q1"][1].astimezone(UTC))
    found["w0"] = (found["w0"][0], found["w0"][1].astimezone(UTC))
    found["w2"] = (found["w2"][0], found["q2"][1].astimezone(UTC))  # the same instant as q2
    found["q3"] = (found["q3"][0], found["q3"][0] - timedelta(seconds=1))
    return found


ANSWER_ORDER = ["q0", "w0", "q1", "w1", "q2", "w2", *(f"{k}{h}" for h in range(3, 8) for k in "qw")]
"""q2 and w2 are answered at the same instant: by call id. q3 is answered at 12:04:59."""
INCLUDED = ANSWER_ORDER[:5]


@pytest.fixture(params=STORE_ENGINES)
def config_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Makes a config directory over a new store of the engine, holding the calls."""
    with contextlib.ExitStack() as stack:

        def make(name: str) -> Path:
            directory = tmp_path / name
            directory.mkdir()
            url = stack.enter_context(store_of_engine(request.param, directory))
            config = directory / "config"
            (config / "plans").mkdir(parents=True)
            (config / "router.yaml").write_text(
                f'store: "{url}"\nspool_dir: "{directory / "spool"}"\n', encoding="utf-8"
            )
            (config / "tariffs.yaml").write_text(tariffs("0.10"), encoding="utf-8")
            (config / "plans" / f"{NUMBER}.yaml").write_text(
                f'number: "{NUMBER}"\nname: Office\nhome_area_code: "010"\n'
                'default: {target: "01087654321"}\n',
                encoding="utf-8",
            )
            ops = [
                op
                for call_id, (started, answered) in calls().items()
                for op in answered_call(call_id, started, answered)
            ]
            asyncio.run(write(url, ops))
            return config

        yield make


async def write(url: str, ops: list[CdrOp]) -> None:
    async with opened_store(url) as store:
        await store.apply(ops)


@dataclass(frozen=True)
class Seen:
    """What a run changed and reported (each change as it was made, and each progress
    report, in the order they came), what it counted, and the ledger after it."""

    reported: list[Change | tuple[int, int]]
    counted: tuple[int, int]
    ledger: list[tuple[str, str, str]]

    @property
    def priced(self) -> list[Change]:
        return [c for c in self.reported if isinstance(c, Change) and c.old is None]

    @property
    def repriced(self) -> list[Change]:
        return [c for c in self.reported if isinstance(c, Change) and c.old is not None]

    @property
    def progress(self) -> list[tuple[int, int]]:
        return [report for report in self.reported if isinstance(report, tuple)]


async def rate(config: Path, *, rerate: bool, page_size: int) -> Seen:
    """A run of `hotline400 rate` over November, reading `page_size` calls a page."""
    books = load_books(config)
    reported: list[Change | tuple[int, int]] = []
    async with books.store() as store:
        run = await rate_cdrs(
            books,
            store,
            datetime(2026, 11, 1, tzinfo=SHANGHAI),
            datetime(2026, 12, 1, tzinfo=SHANGHAI),
            rerate=rerate,
            now=RERATED_AT,
            watch=UNWATCHED,
            progress=lambda done, total: reported.append((done, total)),
            changed=reported.append,
            page_size=page_size,
        )
        ledger = await store.ledger(NUMBER)
    rows = [(entry.kind.value, entry.ref, str(entry.amount)) for entry in ledger]
    return Seen(reported, (run.priced, run.repriced), rows)


def test_the_calls_answered_first_take_the_included_minutes_whatever_page_they_are_in(
    config_of: Callable[[str], Path],
) -> None:
    priced = asyncio.run(rate(config_of("store"), rerate=False, page_size=2)).priced

    assert [change.call_id for change in priced] == ANSWER_ORDER
    assert [change.call_id for change in priced if change.new.callee_share == 0] == INCLUDED


def test_each_change_is_reported_as_its_batch_is_priced_and_the_run_counts_them(
    config_of: Callable[[str], Path],
) -> None:
    """The run hands each price it sets or changes to its caller as it goes, before the
    progress of the batch that holds it, and keeps only how many there were: a month of a
    million calls holds none of them."""
    config = config_of("store")
    first = asyncio.run(rate(config, rerate=False, page_size=2))
    (config / "tariffs.yaml").write_text(tariffs("0.20"), encoding="utf-8")
    again = asyncio.run(rate(config, rerate=True, page_size=2))

    assert first.reported[0] == (0, 16)
    assert [c.call_id for c in first.reported[1:-1] if isinstance(c, Change)] == ANSWER_ORDER
    assert first.reported[-1] == (16, 16)
    assert first.counted == (16, 0)
    assert again.counted == (0, 16)
    assert [change.call_id for change in again.repriced] == ANSWER_ORDER


def test_pages_of_two_price_and_re_price_as_one_page_does(
    config_of: Callable[[str], Path],
) -> None:
    """The same calls in two stores, priced, then re-priced after the local rate doubled
    (the calls that took included minutes keep them, and their new tariff costs them
    nothing more): the same changes, the same ledger and the same progress, read two calls a
    page or all in one."""
    runs: dict[int, list[Seen]] = {}
    for page_size in (2, 1000):
        config = config_of(f"pages-of-{page_size}")
        first = asyncio.run(rate(config, rerate=False, page_size=page_size))
        (config / "tariffs.yaml").write_text(tariffs("0.20"), encoding="utf-8")
        again = asyncio.run(rate(config, rerate=True, page_size=page_size))
        runs[page_size] = [first, again]

    assert runs[2] == runs[1000]
    [first, again] = runs[2]
    assert [change.call_id for change in again.repriced] == ANSWER_ORDER
    adjusted = [(ref, amount) for kind, ref, amount in again.ledger if kind == "adjustment"]
    assert adjusted == [(f"rerate:{call_id}:1", "-0.10") for call_id in ANSWER_ORDER[5:]]
    assert again.progress == [(0, 16), (16, 16)]


async def test_pages_of_any_size_give_the_calls_in_answer_order(store_url: str) -> None:
    """Sixty calls over two hours, some started at the same instant, answered from nine
    minutes before their start (a clock's skew) to twenty after, or with no answer time
    (ordered by their start), recorded in Beijing time or UTC, and calls the reading leaves
    out (busy, of another day): pages of every size give them in the order of one sort."""
    rng = random.Random(400)
    ops: list[CdrOp] = []
    expected: list[tuple[tuple[datetime, str], str]] = []
    for index in range(60):
        started = DAY + timedelta(seconds=rng.choice([0, 60, rng.randrange(7200)]))
        answered: datetime | None = started + timedelta(seconds=rng.randrange(-540, 1200))
        if index % 9 == 0:
            answered = None
        elif index % 2:
            answered = answered.astimezone(UTC)
        call_id = f"c{rng.randrange(10**6)}.{index}"
        [start, finish] = answered_call(call_id, started, answered or started)
        assert isinstance(finish, FinishCall)
        ops += [start, FinishCall(call_id, {**finish.fields, "answered_at": answered})]
        expected.append(((answered or started, call_id), call_id))
    ops += answered_call("other-day", DAY - timedelta(days=1), DAY - timedelta(days=1))
    ops += [StartCall(CDR_BUSY), FinishCall("busy", {"outcome": Outcome.BUSY})]
    expected.sort()

    async with opened_store(store_url) as store:
        await store.apply(ops)
        for size in (1, 2, 3, 7, 1000):
            read = in_answer_order(store, DAY, DAY + timedelta(days=1), page_size=size)
            assert [cdr.call_id async for cdr in read] == [call_id for _, call_id in expected]


async def test_a_call_answered_long_before_its_start_is_priced_late_and_said(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer stamped more than ANSWER_SLACK before its call's start (a clock far off)
    cannot be put in order without reading the whole range: it comes when its page is
    read, and the log says so, as its included minutes may have gone to calls answered
    after it."""
    ops = [
        *answered_call("early", DAY, DAY + timedelta(seconds=5)),
        *answered_call("later", DAY + timedelta(minutes=30), DAY + timedelta(minutes=30)),
        *answered_call("skewed", DAY + timedelta(hours=1), DAY - timedelta(minutes=5)),
    ]
    async with opened_store(store_url) as store:
        await store.apply(ops)
        read = in_answer_order(store, DAY, DAY + timedelta(days=1), page_size=1)
        order = [cdr.call_id async for cdr in read]
    assert order == ["early", "skewed", "later"]  # "early" went before "skewed" was read
    [warning] = [r.getMessage() for r in caplog.records if r.name == "hotline400.rating"]
    assert warning == (
        "call skewed answered at 2026-11-05T08:55:00+08:00, 1:05:00 before its start: "
        "priced out of answer order"
    )
