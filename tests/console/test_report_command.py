"""`hotline400 report` run as a person runs it, on a router's SQLite file: the table names
every outcome the JSON holds, and a file it cannot write is one line, not a traceback."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from numbering.lifecycle import NumberRecord
from router.cli import main
from router.storage.cdr import Outcome
from tests.console.harness import CLINIC, NOW, SHOP, a_call, console_config, created_store

DAY = NOW.date().isoformat()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The example configuration over a store holding six calls to SHOP today."""
    config_dir = console_config(tmp_path, None)
    outcomes = [Outcome.ANSWERED] * 4 + [Outcome.BLOCKED, Outcome.REJECTED]

    async def seed() -> None:
        async with created_store(config_dir) as store:
            for index, outcome in enumerate(outcomes):
                started = NOW - timedelta(minutes=10 * (index + 1))
                await store.apply(a_call(f"r{index}", SHOP, started, outcome))

    asyncio.run(seed())
    return config_dir


def report(config: Path, *extra: str) -> list[str]:
    return ["report", "--config", str(config), "--number", SHOP, "--from", DAY, "--to", DAY, *extra]


def test_the_table_counts_every_outcome_as_the_json_does(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(report(config, "--format", "json")) == 0
    outcomes = json.loads(capsys.readouterr().out)["outcomes"]
    assert outcomes == {"answered": 4, "blocked": 1, "rejected": 1}
    assert main(report(config)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].endswith("6 calls, 4 answered (67%), 0 unanswered")
    assert table[1] == "outcomes: answered 4, blocked 1, rejected 1"


@pytest.mark.parametrize("form", ["table", "csv", "png"])
def test_an_output_file_that_cannot_be_written_is_one_line(
    form: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = tmp_path / "no such directory" / "report.out"
    assert main(report(config, "--format", form, "--output", str(nowhere))) == 1
    out, err = capsys.readouterr()
    assert err == f"hotline400 report: cannot write {nowhere}: No such file or directory\n"
    assert out == ""


class Terminal(io.StringIO):
    """Standard output on a person's terminal."""

    def isatty(self) -> bool:
        return True


def test_a_png_for_a_terminal_is_refused_naming_where_it_can_go(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image's bytes on a terminal are garbage that can leave it in a mess."""
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert main(report(config, "--format", "png")) == 2
    assert sys.stdout.getvalue() == ""
    assert capsys.readouterr().err == (
        "hotline400 report: --format png writes an image: give --output FILE or redirect "
        "standard output to a file (see hotline400 report --help)\n"
    )


def test_the_regions_add_up_to_the_calls_however_many_cities_they_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A nationwide business hears from hundreds of cities: the JSON holds every figure."""
    config_dir = console_config(tmp_path, None)

    async def seed() -> None:
        async with created_store(config_dir) as store:
            for index in range(60):
                started = NOW - timedelta(minutes=index + 1)
                city = f"city {index}"
                await store.apply(a_call(f"c{index}", SHOP, started, province="p", city=city))

    asyncio.run(seed())
    assert main(report(config_dir, "--format", "json")) == 0
    figures = json.loads(capsys.readouterr().out)
    assert len(figures["regions"]) == 60
    assert sum(region["calls"] for region in figures["regions"]) == figures["calls"] == 60


def test_the_counts_of_the_regions_line_up_after_chinese_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = console_config(tmp_path, None)

    async def seed() -> None:
        async with created_store(config_dir) as store:
            await store.apply(a_call("jinan", SHOP, NOW - timedelta(minutes=2)))
            await store.apply(
                a_call("nowhere", SHOP, NOW - timedelta(minutes=1), province="", city="")
            )

    asyncio.run(seed())
    assert main(report(config_dir)) == 0
    table = capsys.readouterr().out.splitlines()
    regions = table[table.index("callers from:") + 1 :][:2]
    assert [line.strip().split()[-1] for line in regions] == ["1", "1"]
    columns = [sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in line) for line in regions]
    assert columns[0] == columns[1]


def test_a_municipality_is_named_once_among_the_callers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir = console_config(tmp_path, None)

    async def seed() -> None:
        async with created_store(config_dir) as store:
            started = NOW - timedelta(minutes=1)
            await store.apply(a_call("sh", SHOP, started, province="上海", city="上海"))

    asyncio.run(seed())
    assert main(report(config_dir)) == 0
    table = capsys.readouterr().out.splitlines()
    [region] = table[table.index("callers from:") + 1 :][:1]
    assert region.split() == ["上海", "1"]


def test_a_number_that_is_nowhere_is_refused_as_users_add_refuses_it(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A number with no plan, no tariffs.yaml account and no inventory record is a typo:
    one line, exit 1, rather than an empty report that reads as a quiet number."""
    typo = ["report", "--config", str(config), "--number", "4009999999", "--from", DAY]
    assert main([*typo, "--to", DAY]) == 1
    assert capsys.readouterr() == (
        "",
        "hotline400 report: no account 4009999999: name a 400 number of the plans, "
        "tariffs.yaml or the inventory\n",
    )


def test_a_known_number_without_calls_still_has_its_empty_report(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CLINIC is in the plans and tariffs.yaml; 4006555555 only in the inventory, as a
    number just imported is: both are numbers a report may be asked of, calls or none."""

    async def imported() -> None:
        async with created_store(config) as store:
            await store.add_numbers([NumberRecord("4006555555")], NOW - timedelta(days=1))

    asyncio.run(imported())
    for number in (CLINIC, "4006555555"):
        argv = ["report", "--config", str(config), "--number", number, "--from", DAY, "--to", DAY]
        assert main(argv) == 0
        out, err = capsys.readouterr()
        assert (out.splitlines()[0], err) == (
            f"{number} {DAY} to {DAY}: 0 calls, 0 answered (-), 0 unanswered",
            "",
        )


def test_a_number_no_longer_configured_is_reported_on_by_its_calls(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Calls in the store say the number was real (a plan since removed): its report is
    printed, not refused as a typo."""

    async def called() -> None:
        async with created_store(config) as store:
            await store.apply(a_call("gone", "4009999999", NOW - timedelta(hours=1)))

    asyncio.run(called())
    gone = ["report", "--config", str(config), "--number", "4009999999", "--from", DAY]
    assert main([*gone, "--to", DAY]) == 0
    assert ": 1 calls, 1 answered (100%)" in capsys.readouterr().out.splitlines()[0]
