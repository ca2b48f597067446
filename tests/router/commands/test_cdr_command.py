"""`hotline400 cdr` lists and exports what the real router stored for real calls.

A call log per store engine (a SQLite file, PostgreSQL) is made by the real daemon: five
calls of different kinds, a minute apart from 10:00 Beijing time, then 55 plain answered
calls, 10:05 to 10:59. The command then reads that store through a config dir whose
router.yaml names it, as an operator's would.
"""

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from router.cli import main
from router.storage.cdr import CDR, CdrOp, FinishCall, Outcome, StartCall, cdr_from_json
from tests.conftest import (
    MONDAY_MORNING,
    STORE_ENGINES,
    call,
    opened_store,
    running_router,
    store_of_engine,
)
from tests.router.commands.test_cli import run_with_reader_gone
from tests.xlsx_reading import Cell, Sheet, read_workbook

BULK_CALLS = 55
FIRST_CALLS = [  # (uniqueid, dialled, caller): placed at 10:00, 10:01, ...
    ("c0", "4000000001", "053188889999"),  # answered
    ("c1", "4000000002", "01062345678"),  # busy, forwarded, answered
    ("c2", "4000000003", "13916012345"),  # no answer three times
    ("c3", "4000000005", "053188889999"),  # Shandong is screened out
    ("c4", "4000000001", "anonymous"),  # withheld caller, answered
]
ALL_CALLS = len(FIRST_CALLS) + BULK_CALLS


class SettableClock:
    """Router time that stands still until the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def place_calls(tmp_path: Path, store_url: str) -> None:
    clock = SettableClock(MONDAY_MORNING)
    placed = [*FIRST_CALLS]
    placed += [(f"b{n:02d}", "4000000001", "02087654321") for n in range(BULK_CALLS)]
    async with running_router(tmp_path, clock=clock, store=store_url) as router:
        for minute, (uniqueid, dialled, caller) in enumerate(placed):
            clock.now = MONDAY_MORNING + timedelta(minutes=minute)
            result = await call(router, uniqueid=uniqueid, dialled=dialled, caller_id=caller)
            assert result.error is None
    # the daemon flushed every CDR as it stopped


@pytest.fixture(scope="module", params=STORE_ENGINES)
def config_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    tmp_path = tmp_path_factory.mktemp("calls")
    with store_of_engine(request.param, tmp_path) as store_url:
        asyncio.run(place_calls(tmp_path, store_url))
        config = tmp_path / "cdr-config"
        config.mkdir()
        (config / "router.yaml").write_text(f'store: "{store_url}"\n', encoding="utf-8")
        yield config


def cdr(config_dir: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["cdr", "--config", str(config_dir), *args]) == 0
    return capsys.readouterr().out


def table_rows(output: str) -> list[str]:
    """The data rows of a table: without the header and the closing count."""
    return output.splitlines()[1:-1]


def test_the_table_shows_the_latest_50_calls_newest_first_and_says_more_exist(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = cdr(config_dir, capsys)
    lines = output.splitlines()
    assert lines[0].split() == [
        "start", "call", "id", "400", "number", "caller", "region", "outcome", "rule",
        "billable", "s", "legs",
    ]  # fmt: skip
    rows = table_rows(output)
    assert len(rows) == 50
    assert rows[0].split()[:3] == ["2026-11-23", "10:59:00", f"b{BULK_CALLS - 1}"]
    assert rows[-1].split()[:3] == ["2026-11-23", "10:10:00", "b05"]
    assert lines[-1] == "50 call(s), newest first; older calls match too (--limit N shows more)"


def test_a_table_row_holds_time_number_caller_region_outcome_rule_seconds_and_legs(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = table_rows(cdr(config_dir, capsys, "--number", "4000000002"))
    assert [row.split(maxsplit=9) for row in rows] == [
        [
            "2026-11-23", "10:01:00", "c1", "4000000002", "01062345678", "北京", "answered",
            "default", "3", "13800000021 BUSY > 13800000011 ANSWER",
        ]
    ]  # fmt: skip


def test_limit_shortens_the_table(config_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = cdr(config_dir, capsys, "--limit", "3")
    assert [row.split()[2] for row in table_rows(output)] == ["b54", "b53", "b52"]


def test_a_limit_above_the_matches_shows_them_all_without_a_more_note(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = cdr(config_dir, capsys, "--limit", "100")
    assert len(table_rows(output)) == ALL_CALLS
    assert output.splitlines()[-1] == f"{ALL_CALLS} call(s), newest first"


def test_filters_by_caller_and_by_outcome(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_jinan = table_rows(cdr(config_dir, capsys, "--caller", "053188889999"))
    assert [row.split()[2:7] for row in from_jinan] == [
        ["c3", "4000000005", "053188889999", "山东/济南", "blocked"],
        ["c0", "4000000001", "053188889999", "山东/济南", "answered"],
    ]
    unanswered = table_rows(cdr(config_dir, capsys, "--outcome", "noanswer"))
    call_ids_and_legs = [
        (parts[2], parts[9]) for parts in (row.split(maxsplit=9) for row in unanswered)
    ]
    assert call_ids_and_legs == [
        ("c2", "13800000031 NOANSWER > 13800000032 NOANSWER > 13800000033 NOANSWER")
    ]


@pytest.mark.parametrize("written", ["0531-8888 9999", "+86 531 8888 9999", "0086 531 88889999"])
def test_a_caller_is_found_however_its_number_is_written(
    config_dir: Path, capsys: pytest.CaptureFixture[str], written: str
) -> None:
    rows = table_rows(cdr(config_dir, capsys, "--caller", written, "--limit", "2"))
    assert [row.split()[2] for row in rows] == ["c3", "c0"]


def test_a_withheld_caller_is_shown_as_the_carrier_sent_it(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = table_rows(cdr(config_dir, capsys, "--caller", "anonymous"))
    assert [row.split()[2:6] for row in rows] == [["c4", "4000000001", "anonymous", "-"]]


def test_since_and_until_take_local_times_iso_times_with_offset_and_whole_days(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def ids(*args: str) -> list[str]:
        return [row.split()[2] for row in table_rows(cdr(config_dir, capsys, *args))]

    assert ids("--since", "2026-11-23 10:01", "--until", "2026-11-23 10:03") == ["c2", "c1"]
    assert ids("--since", "2026-11-23T02:03:00+00:00", "--until", "2026-11-23T10:05+08:00") == [
        "c4",
        "c3",
    ]
    assert len(ids("--until", "2026-11-23", "--limit", "100")) == ALL_CALLS
    assert cdr(config_dir, capsys, "--until", "2026-11-22") == "no calls match\n"
    assert cdr(config_dir, capsys, "--since", "2026-11-24") == "no calls match\n"


@pytest.mark.parametrize("format", ["table", "csv", "json"])
def test_cdr_piped_into_a_reader_that_has_enough_stops_quietly(
    config_dir: Path, format: str
) -> None:
    finished = run_with_reader_gone("cdr", "--config", str(config_dir), "--format", format)
    assert (finished.returncode, finished.stderr) == (141, "")


def test_csv_exports_every_matching_call_one_row_each_with_a_legs_column(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = list(csv.DictReader(io.StringIO(cdr(config_dir, capsys, "--format", "csv"))))
    assert len(rows) == ALL_CALLS
    forwarded = next(row for row in rows if row["call_id"] == "c1")
    assert forwarded == {
        "call_id": "c1",
        "number": "4000000002",
        "caller_raw": "01062345678",
        "caller": "01062345678",
        "caller_kind": "fixed",
        "province": "北京",
        "city": "北京",
        "area_code": "010",
        "started_at": "2026-11-23T10:01:00+08:00",
        "answered_at": "2026-11-23T10:01:00+08:00",
        "ended_at": "2026-11-23T10:01:03+08:00",
        "billable_seconds": "3",
        "outcome": "answered",
        "rule": "default",
        "caller_share": "",
        "callee_share": "",
        "total": "",
        "tariff_id": "",
        "note": "",
        "menu_path": "",
        "menu_digits": "",
        "language": "",
        "recording_path": "",
        "recording_purged_at": "",
        "survey_score": "",
        "legs": "13800000021 BUSY > 13800000011 ANSWER",
    }


def test_csv_honours_filters_and_limit(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = cdr(config_dir, capsys, "--format", "csv", "--number", "4000000001", "--limit", "2")
    rows = list(csv.DictReader(io.StringIO(output)))
    assert [row["call_id"] for row in rows] == ["b54", "b53"]


@pytest.mark.parametrize(
    "sent",
    [
        '=HYPERLINK("http://x.example","x")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
    ],
)
def test_csv_keeps_a_caller_id_that_a_spreadsheet_would_run_as_a_formula_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sent: str
) -> None:
    """The caller ID is the caller's to choose; opened in a spreadsheet, the export must show
    it, never run it: such a cell is quoted (as the console's export does), JSON keeps it."""
    config = tmp_path / "config"
    config.mkdir()
    with store_of_engine("sqlite", tmp_path) as url:
        (config / "router.yaml").write_text(f'store: "{url}"\n', encoding="utf-8")
        start = CDR("f1", "4000000001", sent, None, "unknown", MONDAY_MORNING)
        asyncio.run(_write(url, [StartCall(start)]))
        rows = list(csv.DictReader(io.StringIO(cdr(config, capsys, "--format", "csv"))))
        assert rows[0]["caller_raw"] == "'" + sent
        exported = json.loads(cdr(config, capsys, "--format", "json"))
        assert exported[0]["caller_raw"] == sent


async def _write(url: str, ops: list[CdrOp]) -> None:
    async with opened_store(url) as store:
        await store.apply(ops)


def xlsx(config_dir: Path, tmp_path: Path, *args: str) -> Sheet:
    """The sheet of `cdr --format xlsx`, read back as Excel shows it."""
    output = tmp_path / "calls.xlsx"
    assert (
        main(
            ["cdr", "--config", str(config_dir), "--format", "xlsx", "--output", str(output), *args]
        )
        == 0
    )
    sheets = read_workbook(output)
    assert list(sheets) == ["calls"]
    return sheets["calls"]


def test_xlsx_keeps_numbers_as_text_regions_readable_and_times_as_date_times(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Excel reads a CSV's 01062345678 as the number 1062345678, 13916012345 as 1.39E+10 and
    GBK-mangles 北京: the workbook types each cell, so none of that happens. Its columns are
    the CSV's, a time's heading naming the zone its local times are in."""
    sheet = xlsx(config_dir, tmp_path)
    csv_header = next(csv.reader(io.StringIO(cdr(config_dir, capsys, "--format", "csv"))))
    zoned = {"started_at", "answered_at", "ended_at", "recording_purged_at"}
    assert sheet.header == [f"{n} (Asia/Shanghai)" if n in zoned else n for n in csv_header]
    rows = sheet.rows
    assert len(rows) == ALL_CALLS
    by_id = {row["call_id"].value: row for row in rows}
    forwarded = by_id["c1"]
    assert {name: forwarded[name].value for name in ("caller", "caller_raw", "area_code")} == {
        "caller": "01062345678",
        "caller_raw": "01062345678",
        "area_code": "010",
    }
    assert all(forwarded[name].number_format == "@" for name in ("caller", "area_code", "number"))
    assert (forwarded["province"].value, forwarded["city"].value) == ("北京", "北京")
    assert forwarded["started_at (Asia/Shanghai)"].as_time() == datetime(2026, 11, 23, 10, 1)
    assert forwarded["ended_at (Asia/Shanghai)"].as_time() == datetime(2026, 11, 23, 10, 1, 3)
    assert (forwarded["billable_seconds"].value, forwarded["billable_seconds"].number_format) == (
        3,
        "0",
    )
    assert forwarded["outcome"].value == "answered"
    assert forwarded["legs"].value == "13800000021 BUSY > 13800000011 ANSWER"
    assert "total" not in forwarded  # not priced: a blank cell, as CSV leaves it empty
    assert by_id["c2"]["caller"] == Cell("13916012345", "@")
    assert by_id["c3"]["area_code"] == Cell("0531", "@")


def test_xlsx_honours_filters_and_limit(config_dir: Path, tmp_path: Path) -> None:
    rows = xlsx(config_dir, tmp_path, "--number", "4000000001", "--limit", "2").rows
    assert [row["call_id"].value for row in rows] == ["b54", "b53"]
    jinan = xlsx(config_dir, tmp_path, "--caller", "0531-8888 9999").rows
    assert [row["call_id"].value for row in jinan] == ["c3", "c0"]


def test_xlsx_writes_charges_as_numbers_and_a_formula_caller_id_as_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Money goes into Excel as the number of the Decimal's digits (0.15, never 0.1499..)
    with two decimals shown; a caller ID that reads as a formula is text Excel never runs,
    kept as sent and marked as Excel marks text typed after a quote."""
    config = tmp_path / "config"
    config.mkdir()
    sent = '=HYPERLINK("http://x.example","x")'
    with store_of_engine("sqlite", tmp_path) as url:
        (config / "router.yaml").write_text(f'store: "{url}"\n', encoding="utf-8")
        start = CDR("m1", "4000000001", sent, None, "unknown", MONDAY_MORNING)
        money = {
            "caller_share": Decimal("0.15"),
            "callee_share": Decimal("12345.20"),
            "total": Decimal("12345.35"),
        }
        asyncio.run(_write(url, [StartCall(start), FinishCall("m1", money)]))
        [row] = xlsx(config, tmp_path).rows
    assert row["caller_share"] == Cell(0.15, "0.00")
    assert (row["callee_share"].value, row["total"].value) == (12345.2, 12345.35)
    assert row["caller_raw"] == Cell(sent, "@", quote_prefix=True)
    assert "caller" not in row


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["--format", "xlsx"], "--format xlsx writes a workbook: give --output FILE"),
        (["--format", "csv", "--output", "x.xlsx"], "--output is for --format xlsx; csv goes"),
        (["--output", "x.xlsx"], "--output is for --format xlsx; table goes"),
    ],
)
def test_xlsx_goes_to_a_file_and_only_xlsx_does(
    config_dir: Path, capsys: pytest.CaptureFixture[str], args: list[str], refusal: str
) -> None:
    """A workbook is binary: to a terminal it is noise, so it needs --output; the other
    formats keep going to standard output, where scripts read them."""
    capsys.readouterr()
    assert main(["cdr", "--config", str(config_dir), *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"hotline400 cdr: {refusal}") and err.count("\n") == 1


def test_an_xlsx_that_cannot_be_written_is_reported(
    config_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "no such folder" / "calls.xlsx"
    capsys.readouterr()
    code = main(["cdr", "--config", str(config_dir), "--format", "xlsx", "--output", str(output)])
    assert code == 1
    assert capsys.readouterr().err == f"cannot write {output}: No such file or directory\n"
    assert not output.parent.exists()


def test_json_exports_every_matching_call_with_its_legs(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    everything = json.loads(cdr(config_dir, capsys, "--format", "json"))
    assert len(everything) == ALL_CALLS
    ringing = json.loads(cdr(config_dir, capsys, "--format", "json", "--number", "4000000003"))
    assert len(ringing) == 1
    record = cdr_from_json(ringing[0])
    assert (record.call_id, record.outcome) == ("c2", Outcome.NOANSWER)
    assert [(leg.destination, leg.dial_status) for leg in record.legs] == [
        ("13800000031", "NOANSWER"),
        ("13800000032", "NOANSWER"),
        ("13800000033", "NOANSWER"),
    ]
    assert ringing[0]["region"] == {"province": "上海", "city": "上海", "area_code": "021"}


def test_json_of_no_match_is_an_empty_array(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert json.loads(cdr(config_dir, capsys, "--format", "json", "--caller", "110")) == []


@pytest.mark.parametrize("format", ["csv", "json", "xlsx"])
def test_an_export_read_a_page_at_a_time_holds_every_call_once_newest_first(
    config_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    format: str,
) -> None:
    """Exports read the store a page at a time, each page from where the last ended; with
    pages of 7 calls the 60 calls (and --limit 10 of them) come out as one page of 100 gives
    them, the JSON array written as it was when it was written all at once."""

    def call_ids(*args: str) -> list[str]:
        if format == "xlsx":
            return [row["call_id"].value for row in xlsx(config_dir, tmp_path, *args).rows]
        output = cdr(config_dir, capsys, "--format", format, *args)
        if format == "csv":
            return [row["call_id"] for row in csv.DictReader(io.StringIO(output))]
        records = json.loads(output)
        assert output == json.dumps(records, ensure_ascii=False, indent=2) + "\n"
        return [record["call_id"] for record in records]

    whole = call_ids()
    assert len(whole) == ALL_CALLS
    monkeypatch.setattr("router.commands.cdr.EXPORT_PAGE", 7)
    assert call_ids() == whole
    assert call_ids("--limit", "10") == whole[:10]
    assert (
        call_ids("--number", "4000000001", "--limit", "8")
        == [call_id for call_id in whole if call_id.startswith("b")][:8]
    )
    assert call_ids("--caller", "110") == []


def test_a_missing_database_is_reported_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere" / "hotline400.db"
    (tmp_path / "router.yaml").write_text(f'database: "{missing}"\n', encoding="utf-8")
    assert main(["cdr", "--config", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert f"the database {missing} does not exist" in error
    assert not missing.exists()


def test_a_bad_time_is_refused_with_the_accepted_forms(
    config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["cdr", "--config", str(config_dir), "--since", "yesterday"])
    assert exit_info.value.code == 2
    assert '"YYYY-MM-DD HH:MM"' in capsys.readouterr().err
